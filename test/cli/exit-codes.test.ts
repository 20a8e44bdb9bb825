import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFakePublicApi, type FakePublicApi } from './fake-public-api';
import { runDraw } from './run-draw';

// Exit codes and error lines of the real CLI (cli/README.md "Exit codes"): 2 usage, 3 auth,
// 4 rate limited, 5 server/network, 6 not found, and no file left behind on failure.
const KEY = 'sk-test-exitcodes-0123456789';

let api: FakePublicApi;
let root: string;
let cwd: string;
let env: Record<string, string>;

beforeAll(async () => {
  api = await startFakePublicApi(KEY);
  root = await mkdtemp(path.join(tmpdir(), 'draw-exit-'));
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

/** Exactly one non-empty stderr line starting with "error: ". */
function singleErrorLine(stderr: string): string {
  const lines = stderr.split('\n').filter((line) => line !== '');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^error: /);
  return lines[0]!;
}

/** A port on 127.0.0.1 that nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('authentication (exit 3)', () => {
  it('a key the API refuses', async () => {
    const run = await runDraw(['a red apple'], { cwd, env: { ...env, IMAGE_API_KEY: 'sk-wrong-key-000000' } });
    expect(run.code).toBe(3);
    expect(singleErrorLine(run.stderr)).toBe('error: Incorrect API key provided.');
    expect(run.stdout).toBe('');
    expect(await readdir(cwd)).toEqual([]);
  });

  it('no key at all, before any request, with a hint', async () => {
    const run = await runDraw(['a red apple'], { cwd, env: { IMAGE_API_URL: api.url } });
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/^error: no API key\n.*--api-key.*IMAGE_API_KEY/);
    expect(api.requests).toHaveLength(0);
  });

  it('--api-key wins over IMAGE_API_KEY', async () => {
    const run = await runDraw(['a red apple', '--api-key', KEY], { cwd, env: { ...env, IMAGE_API_KEY: 'sk-stale-key-00000' } });
    expect(run.code).toBe(0);
  });
});

describe('usage (exit 2)', () => {
  it('a size that is not WxH is refused before any request, saying what a size looks like', async () => {
    const run = await runDraw(['a red apple', '--size', 'big'], { cwd, env });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("error: option '--size <WxH>' argument 'big' is invalid.");
    expect(run.stderr).toContain('e.g. --size 512x512');
    expect(api.requests).toHaveLength(0);
  });

  it('a size the server refuses: one line naming the param', async () => {
    const run = await runDraw(['a red apple', '--size', '100x100'], { cwd, env });
    expect(run.code).toBe(2);
    expect(singleErrorLine(run.stderr)).toBe('error: size must be WxH with both sides multiples of 8 (param: size)');
    expect(await readdir(cwd)).toEqual([]);
  });

  it('a sampler the server does not know', async () => {
    const run = await runDraw(['a red apple', '--sampler', 'warp_drive'], { cwd, env });
    expect(run.code).toBe(2);
    expect(singleErrorLine(run.stderr)).toContain('(param: sample_method)');
  });

  it('a 400 on a field the CLI chose itself is unexpected (exit 1), not a usage error', async () => {
    api.behaviour = {
      kind: 'status',
      status: 400,
      body: JSON.stringify({ error: { code: 'bad', message: 'n is wrong', param: 'n', type: 'invalid_request_error' } }),
    };
    const run = await runDraw(['a red apple'], { cwd, env });
    expect(run.code).toBe(1);
    expect(singleErrorLine(run.stderr)).toBe('error: n is wrong (param: n)');
  });

  // One case per way a usage error is raised (our checks, commander's parsers, commander itself);
  // the individual messages are unit-tested in draw-options.test.ts and flag-parsers.test.ts.
  it.each([
    [['a', 'b', 'c'], /expected at most two arguments[\s\S]*Quote a prompt/],
    [['hf.co/only-org', 'a cat'], /not a Hugging Face reference/],
    [['a cat', '--seed', '1.5'], /--seed <n>' argument '1.5' is invalid/],
    [['a cat', '--output', 'missing-dir/a.png'], /output folder missing-dir does not exist[\s\S]*mkdir -p/],
    [['a cat', '--base-url', 'ftp://example.com'], /must start with http/],
    [['a cat', '--no-such-flag'], /unknown option '--no-such-flag'[\s\S]*draw --help/],
  ])('%j', async (args, message) => {
    const run = await runDraw(args, { cwd, env });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(api.requests).toHaveLength(0);
  });
});

describe('rate limits (exit 4)', () => {
  it('429 with Retry-After', async () => {
    api.behaviour = {
      kind: 'status',
      status: 429,
      body: JSON.stringify({
        error: { code: 'rate_limit_exceeded', message: 'Too many requests.', param: null, type: 'rate_limit_error' },
      }),
      headers: { 'retry-after': '12' },
    };
    const run = await runDraw(['a red apple'], { cwd, env });
    expect(run.code).toBe(4);
    expect(singleErrorLine(run.stderr)).toBe('error: Too many requests. (retry after 12 s)');
  });
});

describe('server and network failures (exit 5)', () => {
  it('a 500 with the error body', async () => {
    api.behaviour = {
      kind: 'status',
      status: 500,
      body: JSON.stringify({ error: { code: 'server_error', message: 'The GPU fell over.', param: null, type: 'server_error' } }),
    };
    const run = await runDraw(['a red apple'], { cwd, env });
    expect(run.code).toBe(5);
    expect(singleErrorLine(run.stderr)).toBe('error: The GPU fell over.');
  });

  it('a 502 from a proxy with an HTML body', async () => {
    api.behaviour = { kind: 'status', status: 502, body: '<html>Bad Gateway</html>', headers: { 'content-type': 'text/html' } };
    const run = await runDraw(['a red apple'], { cwd, env });
    expect(run.code).toBe(5);
    expect(singleErrorLine(run.stderr)).toBe('error: the server answered HTTP 502 Bad Gateway');
  });

  it('connection refused, with a hint to start the server', async () => {
    const port = await closedPort();
    const run = await runDraw(['a red apple'], { cwd, env: { IMAGE_API_KEY: KEY, IMAGE_API_URL: `http://127.0.0.1:${port}` } });
    expect(run.code).toBe(5);
    expect(singleErrorLine(run.stderr)).toBe(
      `error: cannot reach the API at http://127.0.0.1:${port} (connection refused); is it running? ` +
        '`npm start` starts one, or set --base-url / IMAGE_API_URL',
    );
  });

  it('an error event in the middle of the stream', async () => {
    api.behaviour = {
      kind: 'stream-error',
      error: { code: 'engine_failed', message: 'The UNet produced NaNs.', param: null, type: 'server_error' },
    };
    const run = await runDraw(['a red apple'], { cwd, env });
    expect(run.code).toBe(5);
    expect(singleErrorLine(run.stderr)).toBe('error: The UNet produced NaNs.');
    expect(await readdir(cwd)).toEqual([]);
  });
});

describe('not found (exit 6)', () => {
  it('an unknown model, naming the models that exist', async () => {
    const run = await runDraw(['no-such-model', 'a red apple'], { cwd, env });
    expect(run.code).toBe(6);
    expect(singleErrorLine(run.stderr)).toBe(
      'error: The model "no-such-model" does not exist. (param: model); available models: tiny-analytic',
    );
  });

  it('an unknown --lora, naming the LoRAs that exist', async () => {
    api.behaviour = {
      kind: 'status',
      status: 400,
      body: JSON.stringify({ error: { code: 'model_not_found', message: 'No LoRA named "inc" is available.', param: 'loras.0.model_name', type: 'invalid_request_error' } }),
    };
    const run = await runDraw(['a red apple', '--lora', 'inc:0.5'], { cwd, env });
    expect(run.code).toBe(6);
    expect(singleErrorLine(run.stderr)).toBe('error: No LoRA named "inc" is available. (param: loras.0.model_name); available LoRAs: styles/ink');
  });

  it('model_not_found inside a stream', async () => {
    api.behaviour = {
      kind: 'stream-error',
      error: { code: 'model_not_found', message: 'The model vanished.', param: 'model', type: 'not_found_error' },
    };
    const run = await runDraw(['tiny-analytic', 'a red apple'], { cwd, env });
    expect(run.code).toBe(6);
  });
});

describe('--list-models', () => {
  it('prints one model per line with its native size, add-ons with their kind and architecture', async () => {
    const run = await runDraw(['--list-models'], { cwd, env });
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('tiny-analytic\t192x128\ttxt2img\nstyles/ink\tlora\tStable Diffusion 1.x\n');
  });
});
