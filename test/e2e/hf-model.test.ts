/**
 * End to end: `draw hf.co/<org>/<repo> "<prompt>"` against the real stack, where the GPU service resolves the
 * reference against HF_ENDPOINT — here a local node:http server serving the tiny model in the Hugging Face
 * layout (tree API + /resolve/), so nothing leaves the machine — downloads it into MODELS_DIR and runs it.
 */
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTinyModelFiles } from '../../scripts/tiny-model/generate';
import { dominant, meanColour } from '../helpers/image-stats';
import { startStack, type Stack } from '../helpers/stack';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');
const FILES = buildTinyModelFiles();
let hub: Server;
/** Every file request the hub saw (listings excluded). */
const hubRequests: string[] = [];
let stack: Stack;

beforeAll(async () => {
  hub = createServer((req, res) => {
    const url = req.url ?? '';
    if (/^\/api\/models\/(acme|other)\/tiny\/tree\/main/.test(url)) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify([...FILES].map(([path, bytes]) => ({ type: 'file', path, size: bytes.length }))));
      return;
    }
    hubRequests.push(url);
    const file = /^\/(?:acme|other)\/tiny\/resolve\/main\/(.+)$/.exec(url);
    const bytes = file ? FILES.get(decodeURIComponent(file[1])) : undefined;
    if (!bytes) return void res.writeHead(404).end('not found');
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) });
    res.end(bytes);
  });
  await new Promise<void>((r) => hub.listen(0, '127.0.0.1', r));
  // The GPU service started by npm start inherits them: the test hub's acme/ repositories may be downloaded.
  process.env.HF_ALLOWED_REPOS = 'acme/*';
  process.env.HF_ENDPOINT = `http://127.0.0.1:${(hub.address() as { port: number }).port}`;
  stack = await startStack();
}, 180_000);
afterAll(async () => {
  await stack?.stop();
  await new Promise((r) => hub?.close(r));
});

const draw = (args: string[]) =>
  run(process.execPath, ['--import', resolve(root, 'node_modules/tsx/dist/esm/index.mjs'), 'cli/src/main.ts', ...args], {
    cwd: root,
    env: { ...process.env, IMAGE_API_URL: stack.baseUrl, IMAGE_API_KEY: stack.apiKey },
  });

describe('hf.co model references', () => {
  it('draw downloads the model through the GPU service and draws with it; afterwards it is listed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'draw-hf-'));
    const out = join(dir, 'apple.png');
    const { stdout } = await draw(['hf.co/acme/tiny', 'a red apple', '--size', '128x128', '--output', out, '--seed', '2']);
    expect(stdout).toContain(out);
    const mean = await meanColour(await readFile(out));
    expect(mean.width).toBe(128);
    expect(dominant(mean)).toBe('red');

    // The second use runs the downloaded folder (its real native size applies when no size is given).
    const again = join(dir, 'sky.png');
    await draw(['hf.co/acme/tiny', 'a blue sky', '--output', again]);
    const second = await meanColour(await readFile(again));
    expect(second.width).toBe(256);
    expect(dominant(second)).toBe('blue');
    // The second lookup refreshed the edge's model list: the downloaded folder is listed.
    const models = await (await fetch(`${stack.baseUrl}/v1/models`, { headers: { authorization: `Bearer ${stack.apiKey}` } })).json();
    expect(models.data.map((m: { id: string }) => m.id)).toContain('acme--tiny');
  });

  it('a repository outside HF_ALLOWED_REPOS is a 403 on model through the public API, and nothing is fetched', async () => {
    const res = await fetch(`${stack.baseUrl}/v1/images/generations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'hf.co/other/tiny', prompt: 'a red apple', size: '64x64', response_format: 'b64_json' }),
    });
    const body = await res.json();
    expect(res.status, JSON.stringify(body)).toBe(403);
    expect(body.error).toMatchObject({ code: 'model_download_forbidden', param: 'model' });
    expect(body.error.message).toMatch(/matches none of HF_ALLOWED_REPOS \(acme\/\*\)/);
    expect(hubRequests.some((u) => u.startsWith('/other/'))).toBe(false);
  });
});
