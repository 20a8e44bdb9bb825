/**
 * End to end: the real GPU service and the real Worker (wrangler dev, local R2/KV), started as `npm start`
 * starts them, called through the public API with the official `openai` npm package, curl-style fetches
 * and the `draw` CLI — checking the colour of what comes back.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dominant, meanColour } from '../helpers/image-stats';
import { startStack, type Stack } from '../helpers/stack';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');
let stack: Stack;
let client: OpenAI;

beforeAll(async () => {
  stack = await startStack();
  client = new OpenAI({ apiKey: stack.apiKey, baseURL: `${stack.baseUrl}/v1` });
}, 180_000);
afterAll(async () => stack?.stop());

describe('public API through the openai SDK', () => {
  it('images.generate with b64_json returns a red image for "a red apple"', async () => {
    const res = await client.images.generate({ prompt: 'a red apple', response_format: 'b64_json', size: '256x256', seed: 3 } as never);
    expect(res.data).toHaveLength(1);
    const png = Buffer.from(res.data![0].b64_json!, 'base64');
    const mean = await meanColour(png);
    expect(mean.width).toBe(256);
    expect(dominant(mean)).toBe('red');
  });

  it('images.generate with url returns a signed link that serves a blue PNG; a tampered link is refused', async () => {
    const res = await client.images.generate({ prompt: 'a blue sky', response_format: 'url', n: 2 } as never);
    expect(res.data).toHaveLength(2);
    const url = res.data![0].url!;
    expect(url).toMatch(/\/v1\/files\/.+\?exp=\d+&sig=[0-9a-f]+/);
    const file = await fetch(url);
    expect(file.status).toBe(200);
    expect(file.headers.get('content-type')).toBe('image/png');
    expect(dominant(await meanColour(Buffer.from(await file.arrayBuffer())))).toBe('blue');
    const tampered = url.replace(/sig=([0-9a-f])/, (_m, c: string) => `sig=${c === '0' ? '1' : '0'}`);
    expect((await fetch(tampered)).status).toBe(403);
  });

  it('rejects a bad key with 401 through the SDK', async () => {
    const bad = new OpenAI({ apiKey: 'sk-wrong', baseURL: `${stack.baseUrl}/v1` });
    await expect(bad.images.generate({ prompt: 'x' })).rejects.toMatchObject({ status: 401 });
  });

  it('the README curl example works as written', async () => {
    const readme = await readFile(join(root, 'README.md'), 'utf8');
    expect(readme).toContain('"prompt": "a red apple", "response_format": "url"');
    const res = await fetch(`${stack.baseUrl}/v1/images/generations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a red apple', response_format: 'url' }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-task-id')).toBeTruthy();
    const body = await res.json();
    const img = await fetch(body.data[0].url);
    expect(dominant(await meanColour(Buffer.from(await img.arrayBuffer())))).toBe('red');
  });
});

describe('uint64 seeds on the real pipeline', () => {
  it('seed 2^64 − 1 sent as a JSON integer draws the noise torch draws for it (its low 32 bits) and comes back exact', async () => {
    const generate = async (seedJson: string) => {
      const response = await fetch(`${stack.baseUrl}/v1/images/generations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' },
        body: `{"prompt": "a cat", "size": "128x128", "sampling_steps": 4, "response_format": "b64_json", "seed": ${seedJson}}`,
      });
      expect(response.status, await response.clone().text()).toBe(200);
      return (await response.json()) as { data: Array<{ b64_json: string; seed: unknown }>; receipt: { seed: unknown } };
    };
    const big = await generate('18446744073709551615');
    const low = await generate('4294967295');
    const other = await generate('4294967294');
    expect(big.data[0].seed).toBe('18446744073709551615');
    expect(big.receipt.seed).toBe('18446744073709551615');
    // torch seeds mt19937 with seed & 0xffffffff: 2^64 − 1 and 2^32 − 1 give the same latents, hence the same
    // pixels (the PNGs differ only in the receipt chunk, which names each seed).
    const pixels = (b64: string) => sharp(Buffer.from(b64, 'base64')).raw().toBuffer();
    expect((await pixels(big.data[0].b64_json)).equals(await pixels(low.data[0].b64_json))).toBe(true);
    expect((await pixels(other.data[0].b64_json)).equals(await pixels(low.data[0].b64_json))).toBe(false);
  });
});

describe('draw CLI against the running stack', () => {
  const draw = (args: string[], key = stack.apiKey) =>
    run(process.execPath, ['--import', resolve(root, 'node_modules/tsx/dist/esm/index.mjs'), 'cli/src/main.ts', ...args], {
      cwd: root,
      env: { ...process.env, IMAGE_API_URL: stack.baseUrl, IMAGE_API_KEY: key },
    });

  it('writes a green PNG for "green grass" and prints its path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'draw-'));
    const out = join(dir, 'grass.png');
    const { stdout } = await draw(['green grass', '--output', out, '--seed', '5']);
    expect(stdout).toContain(out);
    expect(dominant(await meanColour(await readFile(out)))).toBe('green');
  });

  it("the playground's View Code command line runs as printed in the repository and saves a red PNG", async () => {
    const { CODE_SNIPPETS_JS } = await import('../../edge/src/playground/scripts/code-snippets-js');
    const moduleDir = await mkdtemp(join(tmpdir(), 'snippets-'));
    await writeFile(join(moduleDir, 'code-snippets.mjs'), CODE_SNIPPETS_JS);
    const { drawSnippet } = await import(/* @vite-ignore */ pathToFileURL(join(moduleDir, 'code-snippets.mjs')).href);
    const { PLAYGROUND_CONFIG } = await import('../../edge/src/playground');
    const body = { model: 'tiny-analytic', prompt: 'a red apple', n: 1, size: '128x128', seed: 77, sample_method: 'euler', sampling_steps: 6 };
    const snippet: string = drawSnippet({ origin: stack.baseUrl, path: '/v1/images/generations', body, edit: null }, PLAYGROUND_CONFIG);
    const { stdout } = await run('bash', ['-c', snippet], { cwd: root, env: { ...process.env, IMAGE_API_KEY: stack.apiKey } });
    const saved = stdout.trim().split('\n').pop()!;
    try {
      expect(saved).toMatch(/red-apple-77\.png$/);
      expect(dominant(await meanColour(await readFile(resolve(root, saved))))).toBe('red');
    } finally {
      await rm(resolve(root, saved), { force: true });
    }
  });

  it('exits 3 for a bad key and 2 for a bad size, with one clear line', async () => {
    await expect(draw(['a cat', '--output', join(tmpdir(), 'x.png')], 'sk-wrong')).rejects.toMatchObject({ code: 3 });
    const err = await draw(['a cat', '--size', '100x100', '--output', join(tmpdir(), 'y.png')]).catch((e) => e);
    expect(err.code).toBe(2);
    expect(err.stderr).toMatch(/size/);
  });
});
