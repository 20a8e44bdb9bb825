import { chmod, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { viewerCommand } from '../../cli/src/open-viewer';
import { FAKE_DEFAULT_STEPS, FAKE_MODEL, FAKE_RANDOM_SEED, startFakePublicApi, type FakePublicApi } from './fake-public-api';
import { runDraw } from './run-draw';

// The real `draw` CLI, run as a child process, against a fake public API on localhost.
const KEY = 'sk-test-0123456789abcdef';

let api: FakePublicApi;
let root: string;
let cwd: string;
let env: Record<string, string>;

beforeAll(async () => {
  api = await startFakePublicApi(KEY);
  root = await mkdtemp(path.join(tmpdir(), 'draw-cli-'));
});
afterAll(async () => {
  await api.close();
  await rm(root, { recursive: true, force: true });
});
beforeEach(async () => {
  api.behaviour = { kind: 'stream' };
  api.requests.length = 0;
  cwd = await mkdtemp(path.join(root, 'run-'));
  env = { IMAGE_API_KEY: KEY, IMAGE_API_URL: api.url };
});

function generationRequests() {
  return api.requests.filter((request) => request.url === '/v1/images/generations');
}

describe('draw against a streaming API', () => {
  it('writes a PNG of the requested size and prints its path on stdout', async () => {
    const run = await runDraw(['tiny-analytic', 'a red apple', '--size', '64x48', '--seed', '42', '--output', 'apple.png'], {
      cwd,
      env,
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('apple.png\n');
    const meta = await sharp(await readFile(path.join(cwd, 'apple.png'))).metadata();
    expect(meta.format).toBe('png');
    expect([meta.width, meta.height]).toEqual([64, 48]);

    const [request] = generationRequests();
    expect(request!.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(request!.headers['content-type']).toBe('application/json');
    expect(request!.body).toMatchObject({
      model: 'tiny-analytic',
      prompt: 'a red apple',
      size: '64x48',
      seed: 42,
      n: 1,
      stream: true,
      response_format: 'b64_json',
      output_format: 'png',
      sample_method: 'euler',
    });
  });

  it('names the file after the prompt and the seed, in the current folder, when --output is not given', async () => {
    const run = await runDraw(['a red apple', '--seed', '42'], { cwd, env });
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('red-apple-42.png\n');
    expect(await readdir(cwd)).toEqual(['red-apple-42.png']);
    // One positional = the prompt: no model is sent, the server picks its default.
    expect(generationRequests()[0]!.body).not.toHaveProperty('model');
  });

  it('uses the seed the server picked in the default name, and never overwrites an existing file', async () => {
    const taken = `red-apple-${FAKE_RANDOM_SEED}.png`;
    await writeFile(path.join(cwd, taken), 'precious');
    const run = await runDraw(['a red apple'], { cwd, env });
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`red-apple-${FAKE_RANDOM_SEED}-1.png\n`);
    expect(await readFile(path.join(cwd, taken), 'utf8')).toBe('precious');
    expect(generationRequests()[0]!.body).not.toHaveProperty('seed');
  });

  it('adds a suffix instead of overwriting an explicit --output, and says so', async () => {
    await writeFile(path.join(cwd, 'out.png'), 'precious');
    const run = await runDraw(['a red apple', '--output', 'out.png'], { cwd, env });
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('out-1.png\n');
    expect(run.stderr).toContain('warning: out.png already exists; saved as out-1.png instead');
    expect(await readFile(path.join(cwd, 'out.png'), 'utf8')).toBe('precious');
  });

  it('sends no size without --size, so the image has the model native size', async () => {
    const run = await runDraw(['a red apple', '--output', 'native.png'], { cwd, env });
    expect(run.code).toBe(0);
    expect(generationRequests()[0]!.body).not.toHaveProperty('size');
    const meta = await sharp(path.join(cwd, 'native.png')).metadata();
    expect([meta.width, meta.height]).toEqual(FAKE_MODEL.native_size);
  });

  it('passes every generation flag under its API field name', async () => {
    const run = await runDraw(
      [
        'tiny-analytic',
        'green grass',
        '--sampler',
        'dpm++2m',
        '--scheduler',
        'karras',
        '--sample-steps',
        '7',
        '--cfg-scale',
        '6.5',
        '--negative-prompt',
        'text, watermark',
        '--lora',
        'styles/ink:0.8',
        '--lora',
        'detail',
        '--vae',
        'sd-vae-ft-mse',
        '--background',
        'transparent',
        '--output',
        'sub/grass',
      ],
      { cwd: await mkdir(path.join(cwd, 'sub')).then(() => cwd), env },
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`${path.join('sub', 'grass.png')}\n`);
    expect(generationRequests()[0]!.body).toMatchObject({
      sample_method: 'dpm++2m',
      schedule_method: 'karras',
      sampling_steps: 7,
      cfg_scale: 6.5,
      negative_prompt: 'text, watermark',
      loras: [{ model_name: 'styles/ink', strength: 0.8 }, { model_name: 'detail', strength: 1 }],
      vae: 'sd-vae-ft-mse',
      background: 'transparent',
    });
  });

  it('--background transparent with a JPEG output is a usage error before any request', async () => {
    const run = await runDraw(['a red apple', '--background', 'transparent', '--format', 'jpeg'], { cwd, env });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--background transparent needs png or webp/);
    expect(generationRequests()).toHaveLength(0);
    const bad = await runDraw(['a red apple', '--background', 'white'], { cwd, env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/Choose transparent, opaque or auto/);
  });

  it('asks for --format webp, and names the file by the format actually received', async () => {
    api.behaviour = { kind: 'json' };
    const run = await runDraw(['a red apple', '--seed', '5', '--format', 'webp'], { cwd, env });
    expect(generationRequests()[0]!.body!.output_format).toBe('webp');
    // The fake always encodes PNG: the CLI names the file by what it received, not what it asked for.
    expect(run.stdout).toBe('red-apple-5.png\n');
  });

  it('fetches the image when the completed event carries a url, without sending the key there', async () => {
    api.behaviour = { kind: 'stream-url' };
    const run = await runDraw(['a red apple', '--seed', '9', '--output', 'linked.png'], { cwd, env });
    expect(run.code).toBe(0);
    expect((await sharp(path.join(cwd, 'linked.png')).metadata()).format).toBe('png');
    const fileRequest = api.requests.find((request) => request.url === '/files/9.png');
    expect(fileRequest).toBeDefined();
    expect(fileRequest!.headers.authorization).toBeUndefined();
  });
});

describe('draw against a server that does not stream', () => {
  it('accepts a plain JSON answer to a streaming request', async () => {
    api.behaviour = { kind: 'json' };
    const run = await runDraw(['a red apple', '--size', '32x32', '--output', 'plain.png'], { cwd, env });
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('plain.png\n');
    const meta = await sharp(path.join(cwd, 'plain.png')).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 32, 32]);
  });

  it('retries without streaming when the server refuses "stream"', async () => {
    api.behaviour = { kind: 'refuse-stream' };
    const run = await runDraw(['a red apple', '--output', 'retried.png'], { cwd, env });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const bodies = generationRequests().map((request) => request.body!);
    expect(bodies.map((body) => body.stream)).toEqual([true, false]);
    expect(bodies[1]).not.toHaveProperty('preview');
    expect((await sharp(path.join(cwd, 'retried.png')).metadata()).format).toBe('png');
  });
});

describe('--debug', () => {
  it('prints the request body, status, task id and events, but never the API key', async () => {
    const run = await runDraw(['a red apple', '--seed', '3', '--debug', '--api-key', KEY], { cwd, env: { IMAGE_API_URL: api.url } });
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('debug: request body {"prompt":"a red apple"');
    expect(run.stderr).toContain('debug: response 200');
    expect(run.stderr).toContain('x-task-id: task-sse');
    expect(run.stderr).toMatch(new RegExp(`debug: event image_generation.progress .*"step":${FAKE_DEFAULT_STEPS}`));
    expect(run.stderr).toContain('base64 chars>');
    expect(run.stderr).not.toContain(KEY);
    // stdout stays clean for scripts: only the path.
    expect(run.stdout).toBe('red-apple-3.png\n');
  });

  it('keeps the key out of the output even when the server echoes it in an error', async () => {
    api.behaviour = {
      kind: 'status',
      status: 500,
      body: JSON.stringify({ error: { code: 'boom', message: `failed for key ${KEY}`, param: null, type: 'server_error' } }),
      headers: { 'x-echo-key': KEY },
    };
    const run = await runDraw(['a red apple', '-d'], { cwd, env });
    expect(run.code).toBe(5);
    expect(run.stderr).toContain('x-echo-key: ***');
    expect(run.stderr).not.toContain(KEY);
  });
});

describe.skipIf(process.platform === 'win32')('--show', () => {
  it('opens the saved file with the desktop viewer', async () => {
    const bin = path.join(cwd, 'bin');
    await mkdir(bin);
    const { command } = viewerCommand('x', process.platform);
    const log = path.join(cwd, 'opened.txt');
    await writeFile(path.join(bin, command), `#!/bin/sh\nprintf '%s' "$1" > '${log}'\n`);
    await chmod(path.join(bin, command), 0o755);
    const run = await runDraw(['a red apple', '--output', 'shown.png', '--show'], {
      cwd,
      env: { ...env, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}` },
    });
    expect(run.code).toBe(0);
    expect(await readFile(log, 'utf8')).toBe(path.join(cwd, 'shown.png'));
  });

  it('only warns when no viewer can be started', async () => {
    const empty = path.join(cwd, 'empty-bin');
    await mkdir(empty);
    const run = await runDraw(['a red apple', '--output', 'unshown.png', '--show'], { cwd, env: { ...env, PATH: empty } });
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('unshown.png\n');
    expect(run.stderr).toMatch(/^warning: could not open the image/m);
  });
});

describe('the entry points', () => {
  it('`npm run draw` runs cli/src/main.ts through tsx', async () => {
    const run = await runDraw(['a blue sky', '--seed', '1'], { cwd, env, via: 'tsx' });
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('blue-sky-1.png\n');
  });

  it('--help documents the arguments, the flags and the exit codes', async () => {
    const run = await runDraw(['--help'], { cwd });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Usage: draw [options] [model] [prompt]');
    for (const flag of ['--size', '--sampler', '--sample-steps', '--cfg-scale', '--seed', '--negative-prompt', '--output', '--background', '--show', '--debug', '--api-key', '--base-url']) {
      expect(run.stdout).toContain(flag);
    }
    expect(run.stdout).toContain('Exit codes:');
  });
});
