/**
 * `hf.co/<org>/<repo>[:<tag or file>]` model references, against a local node:http server that serves the
 * tiny model in the Hugging Face layout (tree API + /resolve/) — no real network: download with progress
 * events, then the same pixels as the local copy; the fixed-layout fallback without a tree API; a server
 * killed mid-download or a size mismatch leave no model folder; single-file references.
 */
import { createServer, type Server } from 'node:http';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../gpu-service/src/app';
import { parseHfReference } from '@image-api/shared/hf-reference';
import { buildTinyModelFiles, generateTinyModel } from '../../scripts/tiny-model/generate';
import { streamJob } from './sse-client';

const TOKEN = 'hf-test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
const FILES = buildTinyModelFiles();
const KILL_FILE = 'text_encoder/model.onnx';
const requests: string[] = [];
let server: Server;
let endpoint: string;
let modelsDir: string;
let app: FastifyInstance;
let base: string;

/** A one-tensor LoRA in safetensors format. */
function loraFile(): Buffer {
  const json = Buffer.from(JSON.stringify({ 'lora_unet_x.lora_down.weight': { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, Buffer.alloc(4)]);
}

/**
 * Repositories: acme/tiny (tree API), acme/plain (no tree API: 404), acme/flaky (the connection dies
 * half-way through KILL_FILE), acme/liar (the tree announces a wrong size), acme/loras (one LoRA file).
 */
function handle(url: string): { status: number; body?: Uint8Array; json?: unknown; dieAfter?: number } {
  const tree = /^\/api\/models\/acme\/([\w-]+)\/tree\/([\w.-]+)$/.exec(url.split('?')[0]);
  if (tree) {
    const [, repo] = tree;
    if (repo === 'plain' || repo === 'missing') return { status: 404, json: { error: 'Not Found' } };
    if (repo === 'loras') return { status: 200, json: [{ type: 'file', path: 'style.safetensors', size: loraFile().length }] };
    const entries = [...FILES].map(([path, bytes]) => ({
      type: 'file',
      path,
      size: repo === 'liar' && path === 'unet/model.onnx' ? bytes.length + 1 : bytes.length,
    }));
    // Directories appear in the real listing too; they must be ignored.
    return { status: 200, json: [{ type: 'directory', path: 'unet', size: 0 }, ...entries] };
  }
  const file = /^\/acme\/([\w-]+)\/resolve\/([\w.-]+)\/(.+)$/.exec(url);
  if (!file) return { status: 404 };
  const [, repo, , path] = file;
  if (repo === 'loras') return path === 'style.safetensors' ? { status: 200, body: loraFile() } : { status: 404 };
  if (repo === 'missing') return { status: 404 };
  const bytes = FILES.get(decodeURIComponent(path));
  if (!bytes) return { status: 404 };
  if (repo === 'flaky' && path === KILL_FILE) return { status: 200, body: bytes, dieAfter: Math.floor(bytes.length / 2) };
  return { status: 200, body: bytes };
}

beforeAll(async () => {
  server = createServer((req, res) => {
    requests.push(req.url!);
    const r = handle(req.url!);
    if (r.json !== undefined) {
      res.writeHead(r.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(r.json));
      return;
    }
    if (!r.body) {
      res.writeHead(r.status).end('not found');
      return;
    }
    res.writeHead(r.status, { 'content-type': 'application/octet-stream', 'content-length': String(r.body.length) });
    if (r.dieAfter !== undefined) {
      // The server "dies" mid-file: half the bytes, then the connection is cut.
      res.write(r.body.subarray(0, r.dieAfter), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(r.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address() as { port: number };
  endpoint = `http://127.0.0.1:${address.port}`;
  modelsDir = await mkdtemp(join(tmpdir(), 'models-hf-'));
  await generateTinyModel(join(modelsDir, 'tiny-local'));
  app = await buildApp({ modelsDir, serviceToken: TOKEN, executionProviders: ['cpu'], intraOpNumThreads: 1, queueMax: 4, hfEndpoint: endpoint, hfPolicy: { allowedRepos: ['acme/*'], maxModelBytes: 0, modelsDirMaxBytes: 0 } });
  base = await app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await app?.close();
  await new Promise((r) => server?.close(r));
});

const job = (model: string, over: Record<string, unknown> = {}) => ({
  id: `hf-${Math.random().toString(36).slice(2)}`,
  model,
  prompt: 'a red apple',
  width: 64,
  height: 64,
  seed: 11,
  steps: 5,
  sampler: 'euler',
  ...over,
});

const pixels = (b64: string) => sharp(Buffer.from(b64, 'base64')).raw().toBuffer();

describe('hf.co model references', () => {
  it('parses references into repo, revision, file and folder name', () => {
    expect(parseHfReference('hf.co/acme/tiny')).toMatchObject({ repo: 'acme/tiny', revision: 'main', folderName: 'acme--tiny' });
    expect(parseHfReference('hf.co/acme/tiny:onnx')).toMatchObject({ revision: 'onnx', folderName: 'acme--tiny--onnx' });
    expect(parseHfReference('huggingface.co/acme/loras:style.safetensors')).toMatchObject({ revision: 'main', file: 'style.safetensors', folderName: 'acme--loras--style' });
    expect(() => parseHfReference('hf.co/acme')).toThrow(/hf\.co\/<org>\/<repo>/);
  });

  it('downloads with progress events, then serves the same pixels as the local copy', async () => {
    const stream = await streamJob(base, TOKEN, job('hf.co/acme/tiny'));
    const events = await stream.all();
    expect(events.at(-1)!.event, JSON.stringify(events.at(-1)).slice(0, 400)).toBe('done');
    const names = events.map((e) => e.event);
    const progress = events.filter((e) => e.event === 'downloading').map((e) => e.data);
    expect(names.indexOf('downloading')).toBe(0);
    expect(names.lastIndexOf('downloading')).toBeLessThan(names.indexOf('started'));
    const expectedTotal = [...FILES].filter(([p]) => p !== 'README.md').reduce((n, [, b]) => n + b.length, 0);
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress.every((p) => p.total === expectedTotal)).toBe(true);
    expect(progress.map((p) => p.bytes)).toEqual([...progress.map((p) => p.bytes)].sort((a, b) => a - b));
    expect(progress.at(-1)!.bytes).toBe(expectedTotal);
    // README.md is not part of the pipeline layout and is not fetched.
    expect(requests.some((u) => u.endsWith('/README.md'))).toBe(false);

    const result = events.at(-1)!.data.result;
    const local = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job('tiny-local') });
    expect(result.params.model).toBe('acme--tiny');
    expect(result.params.model_hash).toBe(local.json().params.model_hash);
    expect((await pixels(result.images[0].b64)).equals(await pixels(local.json().images[0].b64))).toBe(true);

    const rows = (await app.inject({ method: 'GET', url: '/v1/models', headers: auth })).json().data;
    expect(rows.find((r: { id: string }) => r.id === 'acme--tiny')).toMatchObject({ kind: 'checkpoint', loaded: true });
    // A second job finds the folder: nothing is fetched again.
    const before = requests.length;
    const again = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job('hf.co/acme/tiny') });
    expect(again.statusCode).toBe(200);
    expect(requests.length).toBe(before);
  });

  it('falls back to the fixed diffusers ONNX file list when the endpoint has no tree API', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job('hf.co/acme/plain') });
    expect(res.statusCode, res.body).toBe(200);
    expect(requests).toContain('/acme/plain/resolve/main/unet/model.onnx');
    expect(requests).toContain('/acme/plain/resolve/main/unet/model.onnx_data'); // optional: 404 tolerated
  });

  it('a server killed mid-download leaves no model folder and fails the job with the reason', async () => {
    const stream = await streamJob(base, TOKEN, job('hf.co/acme/flaky'));
    const final = await stream.final();
    expect(final.event).toBe('error');
    expect(final.data.error).toMatchObject({ code: 'model_download_failed', param: 'model' });
    expect(final.data.error.message).toMatch(/hf\.co\/acme\/flaky.*failed: (terminated|.*received \d+ of \d+ bytes)/);
    // It got as far as the file that was cut.
    expect(requests).toContain(`/acme/flaky/resolve/main/${KILL_FILE}`);
    const entries = await readdir(modelsDir);
    expect(entries).not.toContain('acme--flaky');
    expect(entries.filter((e) => e.startsWith('.download-'))).toEqual([]);
    const rows = (await app.inject({ method: 'GET', url: '/v1/models', headers: auth })).json().data;
    expect(rows.map((r: { id: string }) => r.id)).not.toContain('acme--flaky');
  });

  it('a file whose size differs from the manifest fails the download', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job('hf.co/acme/liar') });
    expect(res.statusCode).toBe(502);
    expect(res.json().error.message).toMatch(/unet\/model\.onnx: the server sends \d+ bytes, the manifest says \d+/);
    expect(await readdir(modelsDir)).not.toContain('acme--liar');
  });

  it('an unknown repository fails with the HTTP status; a malformed reference is a 400', async () => {
    const missing = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job('hf.co/acme/missing') });
    expect(missing.statusCode).toBe(502);
    expect(missing.json().error.message).toMatch(/HTTP 404/);
    const bad = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job('hf.co/acme') });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.param).toBe('model');
  });

  it('a :file reference fetches that one file; a LoRA is listed but cannot run a job alone', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job('hf.co/acme/loras:style.safetensors') });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toMatch(/lora, not a checkpoint/);
    const rows = (await app.inject({ method: 'GET', url: '/v1/models', headers: auth })).json().data;
    expect(rows.find((r: { id: string }) => r.id === 'acme--loras--style')).toMatchObject({ kind: 'lora' });
  });
});
