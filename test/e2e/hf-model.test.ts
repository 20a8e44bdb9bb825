/**
 * End to end: `draw hf.co/<org>/<repo> "<prompt>"` against the real stack, where the GPU service resolves the
 * reference against HF_ENDPOINT — here a local node:http server serving the tiny model in the Hugging Face
 * layout (tree API + /resolve/), so nothing leaves the machine — downloads it into MODELS_DIR and runs it.
 * HF_ALLOWED_REPOS is `acme/*`: a repository outside it is refused for a plain key (sync and async), and a key
 * made with `npm run keys -- create --models-download` downloads it (without HF_TOKEN, which only acme/ gets).
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
/** Every request (listings included) with its Authorization header. */
const hubAuth: Array<{ url: string; authorization?: string }> = [];
const HF_TOKEN = 'hf_e2e_token_for_allowed_repos';
let stack: Stack;

beforeAll(async () => {
  hub = createServer((req, res) => {
    const url = req.url ?? '';
    hubAuth.push({ url, authorization: req.headers.authorization });
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
  process.env.HF_TOKEN = HF_TOKEN;
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

  it('an async submit with that reference is refused at submit with the same 403, on request.model_name', async () => {
    const res = await fetch(`${stack.baseUrl}/v3/async/txt2img`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        extra: {},
        request: { model_name: 'hf.co/other/tiny', prompt: 'a red apple', width: 128, height: 128, image_num: 1, steps: 2, guidance_scale: 7, sampler_name: 'Euler' },
      }),
    });
    const body = await res.json();
    expect(res.status, JSON.stringify(body)).toBe(403);
    expect(body.error).toMatchObject({ code: 'model_download_forbidden', param: 'request.model_name' });
    expect(body.error.message).toMatch(/matches none of HF_ALLOWED_REPOS \(acme\/\*\)/);
    expect(hubRequests.some((u) => u.startsWith('/other/'))).toBe(false);
  });

  it('a key made with `keys create --models-download` downloads that repository (without HF_TOKEN); the plain key still may not', async () => {
    const generate = (key: string) =>
      fetch(`${stack.baseUrl}/v1/images/generations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'hf.co/other/tiny', prompt: 'a red apple', size: '128x128', seed: 2, response_format: 'b64_json' }),
      });
    const plain = await generate(stack.apiKey);
    expect(plain.status, await plain.clone().text()).toBe(403);
    expect((await plain.json()).error.code).toBe('model_download_forbidden');
    expect(hubRequests.some((u) => u.startsWith('/other/'))).toBe(false);

    // The admin command, into the running stack's KV (wrangler dev serves a key written while it runs).
    const { stdout } = await run(
      process.execPath,
      ['--import', resolve(root, 'node_modules/tsx/dist/esm/index.mjs'), 'scripts/keys.ts', '--persist-to', stack.stateDir, 'create', '--name', 'e2e-downloader', '--models-download'],
      { cwd: root },
    );
    const adminKey = stdout.trim().split('\n').at(-1)!;
    expect(adminKey).toMatch(/^sk-img-/);

    const admin = await generate(adminKey);
    const body = await admin.json();
    expect(admin.status, JSON.stringify(body)).toBe(200);
    const mean = await meanColour(Buffer.from(body.data[0].b64_json, 'base64'));
    expect(mean.width).toBe(128);
    expect(dominant(mean)).toBe('red');
    // Downloaded from the hub, without the token HF_ALLOWED_REPOS' repositories get (acme/ had it).
    const other = hubAuth.filter((r) => r.url.includes('/other/tiny/'));
    expect(other.some((r) => r.url.startsWith('/other/tiny/resolve/'))).toBe(true);
    expect(other.every((r) => r.authorization === undefined)).toBe(true);
    const acme = hubAuth.filter((r) => r.url.includes('/acme/tiny/'));
    expect(acme.length).toBeGreaterThan(0);
    expect(acme.every((r) => r.authorization === `Bearer ${HF_TOKEN}`)).toBe(true);
  });
});
