/**
 * What `hf.co/<org>/<repo>` references may download (issue 10 item 1) and which files a reference means
 * (issue 15's tag rule), against a local node:http "hub" (tree API + /resolve/, no real network):
 * HF_ALLOWED_REPOS (empty = 403 on `model`), the `download_any_repo` job flag of a `models:download` key,
 * HF_TOKEN only for allowed repositories, HF_MAX_MODEL_BYTES and MODELS_DIR_MAX_BYTES checked from the
 * listing before any file is fetched, a download that fails to load removed, the GGUF tag rule
 * (no tag → Q4_0, :QUANT, :file.gguf, none/several → 400 listing the files), ONNX repositories keep
 * :revision, safetensors repositories fetch only the files a pipeline needs.
 */
import { createServer, type Server } from 'node:http';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../gpu-service/src/app';
import type { HfDownloadPolicy } from '../../gpu-service/src/models/hf-policy';
import { buildTinyModelFiles } from '../../scripts/tiny-model/generate';

const TOKEN = 'hf-policy-token-0123456789';
const HF_TOKEN = 'hf_secret_for_allowed_repos';
const auth = { authorization: `Bearer ${TOKEN}` };
const TINY = buildTinyModelFiles();
const TINY_BYTES = [...TINY].filter(([p]) => p !== 'README.md').reduce((n, [, b]) => n + b.length, 0);
const junk = (n: number) => Buffer.alloc(n, 7);

/** The hub's repositories: path → bytes. */
const REPOS = new Map<string, Map<string, Uint8Array>>([
  ['acme/tiny', TINY],
  ['other/tiny', TINY],
  // Served file by file, but without a tree API: sizes are unknown until the bytes arrive.
  ['acme/notree', TINY],
  // The tiny model with a UNet that is no ONNX graph: it downloads, then fails to load.
  ['acme/broken', new Map<string, Uint8Array>([...TINY].map(([p, b]) => [p, p === 'unet/model.onnx' ? junk(b.length) : b]))],
  [
    'acme/sd-GGUF',
    new Map([
      ['README.md', junk(10)],
      ['sd-model-Q4_0.gguf', junk(40)],
      ['sd-model-Q4_0_4_4.gguf', junk(41)],
      ['sd-model-Q8_0.gguf', junk(80)],
      ['sd-model-F16.gguf', junk(160)],
      ['sd-model-Q4_K_M.gguf', junk(45)],
    ]),
  ],
  ['acme/twice-GGUF', new Map([['a-Q4_0.gguf', junk(40)], ['b-Q4_0.gguf', junk(40)]])],
  [
    'acme/diffusers-st',
    new Map([
      ['model_index.json', Buffer.from('{"_class_name":"StableDiffusionPipeline"}')],
      ['README.md', junk(10)],
      ['sample.png', junk(30)],
      ['unet/config.json', Buffer.from('{}')],
      ['unet/diffusion_pytorch_model.safetensors', junk(64)],
      ['unet/diffusion_pytorch_model.fp16.safetensors', junk(32)],
      ['unet/diffusion_pytorch_model.bin', junk(64)],
      ['vae/config.json', Buffer.from('{}')],
      ['vae/diffusion_pytorch_model.fp16.safetensors', junk(16)],
      ['vae/diffusion_pytorch_model.msgpack', junk(16)],
      ['text_encoder/config.json', Buffer.from('{}')],
      ['text_encoder/model.safetensors', junk(24)],
      ['tokenizer/vocab.json', Buffer.from('{}')],
      ['scheduler/scheduler_config.json', Buffer.from('{}')],
      ['safety_checker/model.safetensors', junk(50)],
      ['unet/diffusion_flax_model.msgpack', junk(20)],
    ]),
  ],
  ['acme/single-st', new Map([['README.md', junk(10)], ['model.safetensors', junk(64)], ['images/preview.png', junk(30)], ['extra/vae.safetensors', junk(16)]])],
]);

interface HubRequest {
  url: string;
  authorization?: string;
}
const requests: HubRequest[] = [];
let hub: Server;
let endpoint: string;
const apps: FastifyInstance[] = [];

beforeAll(async () => {
  hub = createServer((req, res) => {
    const url = req.url!;
    requests.push({ url, authorization: req.headers.authorization });
    const tree = /^\/api\/models\/([\w-]+\/[\w.-]+)\/tree\/([\w.-]+)/.exec(url);
    if (tree) {
      const files = tree[1] === 'acme/notree' ? undefined : REPOS.get(tree[1]);
      if (!files) return void res.writeHead(404).end('{}');
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify([...files].map(([path, b]) => ({ type: 'file', path, size: b.length }))));
    }
    const file = /^\/([\w-]+\/[\w.-]+)\/resolve\/([\w.-]+)\/(.+)$/.exec(url);
    const bytes = file ? REPOS.get(file[1])?.get(decodeURIComponent(file[3])) : undefined;
    if (!bytes) return void res.writeHead(404).end('not found');
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) });
    res.end(bytes);
  });
  await new Promise<void>((r) => hub.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(hub.address() as { port: number }).port}`;
});
afterAll(async () => {
  for (const app of apps) await app.close();
  await new Promise((r) => hub?.close(r));
});

/** A GPU service over a fresh MODELS_DIR with this policy. */
async function service(policy: Partial<HfDownloadPolicy>, existingBytes = 0): Promise<{ app: FastifyInstance; modelsDir: string }> {
  const modelsDir = await mkdtemp(join(tmpdir(), 'models-hf-policy-'));
  if (existingBytes) await writeFile(join(modelsDir, 'existing.bin'), junk(existingBytes));
  const app = await buildApp({
    modelsDir,
    serviceToken: TOKEN,
    executionProviders: ['cpu'],
    intraOpNumThreads: 1,
    queueMax: 4,
    hfEndpoint: endpoint,
    hfToken: HF_TOKEN,
    hfPolicy: { allowedRepos: [], maxModelBytes: 0, modelsDirMaxBytes: 0, ...policy },
  });
  apps.push(app);
  return { app, modelsDir };
}

const job = (model: string, over: Record<string, unknown> = {}) => ({
  id: `hfp-${Math.random().toString(36).slice(2)}`,
  model,
  prompt: 'a red apple',
  width: 64,
  height: 64,
  seed: 3,
  steps: 2,
  sampler: 'euler',
  ...over,
});

const post = (app: FastifyInstance, body: Record<string, unknown>) => app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: body });
const hubCalls = (repo: string) => requests.filter((r) => r.url.includes(`/${repo}/`));
const fetched = (repo: string) => hubCalls(repo).filter((r) => r.url.includes('/resolve/')).map((r) => decodeURIComponent(r.url.replace(/^.*\/resolve\/[^/]+\//, '')));
/** What MODELS_DIR holds besides `keep`: no partial or failed download may be left. */
const leftovers = async (dir: string, keep: string[] = []) => (await readdir(dir)).filter((e) => !keep.includes(e));

describe('HF_ALLOWED_REPOS', () => {
  it('empty: every hf.co reference is refused with 403 on model before the hub is asked; /v1/models says so', async () => {
    const { app, modelsDir } = await service({});
    const before = requests.length;
    const res = await post(app, job('hf.co/acme/tiny'));
    expect(res.statusCode).toBe(403);
    expect(res.json().error).toMatchObject({ code: 'model_download_forbidden', param: 'model' });
    expect(res.json().error.message).toMatch(/HF_ALLOWED_REPOS is empty.*models:download/);
    expect(requests.length).toBe(before);
    expect(await leftovers(modelsDir)).toEqual([]);
    const list = (await app.inject({ method: 'GET', url: '/v1/models', headers: auth })).json();
    expect(list.hf_downloads).toEqual({ allowed_repos: [], max_model_bytes: 0, models_dir_max_bytes: 0 });
  });

  it('a repository outside the patterns is refused; one inside downloads with HF_TOKEN; download_any_repo downloads any, without the token', async () => {
    const { app, modelsDir } = await service({ allowedRepos: ['acme/*'] });
    const refused = await post(app, job('hf.co/other/tiny'));
    expect(refused.statusCode).toBe(403);
    expect(refused.json().error.param).toBe('model');
    expect(refused.json().error.message).toMatch(/"other\/tiny" matches none of HF_ALLOWED_REPOS \(acme\/\*\)/);
    expect(hubCalls('other/tiny')).toEqual([]);

    const allowed = await post(app, job('hf.co/acme/tiny'));
    expect(allowed.statusCode, allowed.body).toBe(200);
    expect(hubCalls('acme/tiny').length).toBeGreaterThan(1);
    expect(hubCalls('acme/tiny').every((r) => r.authorization === `Bearer ${HF_TOKEN}`)).toBe(true);

    const admin = await post(app, job('hf.co/other/tiny', { download_any_repo: true }));
    expect(admin.statusCode, admin.body).toBe(200);
    expect(hubCalls('other/tiny').length).toBeGreaterThan(1);
    expect(hubCalls('other/tiny').every((r) => r.authorization === undefined)).toBe(true);
    expect((await leftovers(modelsDir)).sort()).toEqual(['acme--tiny', 'other--tiny']);
    const list = (await app.inject({ method: 'GET', url: '/v1/models', headers: auth })).json();
    expect(list.hf_downloads.allowed_repos).toEqual(['acme/*']);
  });
});

describe('size limits, checked from the listing before any file is fetched', () => {
  it('HF_MAX_MODEL_BYTES: a model one byte over is refused with 413 on model; nothing is fetched or left', async () => {
    const { app, modelsDir } = await service({ allowedRepos: ['acme/*'], maxModelBytes: TINY_BYTES - 1 });
    const before = requests.length;
    const res = await post(app, job('hf.co/acme/tiny'));
    expect(res.statusCode).toBe(413);
    expect(res.json().error).toMatchObject({ code: 'model_too_large', param: 'model' });
    expect(res.json().error.message).toContain(`${TINY_BYTES} bytes, more than HF_MAX_MODEL_BYTES (${TINY_BYTES - 1})`);
    const calls = requests.slice(before);
    expect(calls.length).toBeGreaterThan(0);
    expect(calls.every((r) => r.url.startsWith('/api/models/'))).toBe(true);
    expect(await leftovers(modelsDir)).toEqual([]);
  });

  it('MODELS_DIR_MAX_BYTES counts the files already there plus this download; a budget that fits downloads', async () => {
    // The model alone fits the budget; with the 1,000 bytes already in MODELS_DIR it does not.
    const { app, modelsDir } = await service({ allowedRepos: ['acme/*'], modelsDirMaxBytes: TINY_BYTES + 500 }, 1000);
    const before = requests.length;
    const res = await post(app, job('hf.co/acme/tiny'));
    expect(res.statusCode).toBe(413);
    expect(res.json().error.param).toBe('model');
    expect(res.json().error.message).toContain(`MODELS_DIR holds 1000, more than MODELS_DIR_MAX_BYTES (${TINY_BYTES + 500})`);
    expect(requests.slice(before).some((r) => r.url.includes('/resolve/'))).toBe(false);
    expect(await leftovers(modelsDir)).toEqual(['existing.bin']);

    const fits = await service({ allowedRepos: ['acme/*'], maxModelBytes: TINY_BYTES, modelsDirMaxBytes: TINY_BYTES + 1000 }, 1000);
    const ok = await post(fits.app, job('hf.co/acme/tiny'));
    expect(ok.statusCode, ok.body).toBe(200);
    expect((await leftovers(fits.modelsDir)).sort()).toEqual(['acme--tiny', 'existing.bin']);
  });
});

describe('failed downloads leave nothing behind', () => {
  it('without a listing the cap applies while bytes arrive: the download stops at the cap and leaves nothing', async () => {
    const { app, modelsDir } = await service({ allowedRepos: ['acme/*'], maxModelBytes: Math.floor(TINY_BYTES / 2) });
    const res = await post(app, job('hf.co/acme/notree'));
    expect(res.statusCode).toBe(413);
    expect(res.json().error).toMatchObject({ code: 'model_too_large', param: 'model' });
    expect(res.json().error.message).toContain(`over its limit of ${Math.floor(TINY_BYTES / 2)}`);
    expect(fetched('acme/notree').length).toBeGreaterThan(0);
    expect(await leftovers(modelsDir)).toEqual([]);
  });

  it('a downloaded model that fails to load is removed from MODELS_DIR', async () => {
    const { app, modelsDir } = await service({ allowedRepos: ['acme/*'] });
    const res = await post(app, job('hf.co/acme/broken'));
    expect(res.statusCode).toBeGreaterThanOrEqual(400);
    expect(res.json().error.param).toBe('model');
    expect(fetched('acme/broken')).toContain('unet/model.onnx');
    expect(await leftovers(modelsDir)).toEqual([]);
  });
});

describe('the tag rule (GGUF repositories) and file selection', () => {
  let app: FastifyInstance;
  let modelsDir: string;
  beforeAll(async () => {
    ({ app, modelsDir } = await service({ allowedRepos: ['acme/*'] }));
  });

  /** Which GGUF file a reference downloads (the junk bytes then fail to load and are removed again). */
  async function ggufFetched(model: string): Promise<string[]> {
    const before = requests.length;
    await post(app, job(model));
    return requests
      .slice(before)
      .filter((r) => r.url.includes('/resolve/'))
      .map((r) => r.url.replace(/^.*\/resolve\//, ''));
  }

  it('GGUF: no tag is the Q4_0 file (not Q4_0_4_4), :QUANT in any case, :file.gguf, at revision main; ONNX: :<revision>', async () => {
    expect(await ggufFetched('hf.co/acme/sd-GGUF')).toEqual(['main/sd-model-Q4_0.gguf']);
    expect(await ggufFetched('hf.co/acme/sd-GGUF:q8_0')).toEqual(['main/sd-model-Q8_0.gguf']);
    expect(await ggufFetched('hf.co/acme/sd-GGUF:FP16')).toEqual(['main/sd-model-F16.gguf']);
    expect(await ggufFetched('hf.co/acme/sd-GGUF:Q4_K_M')).toEqual(['main/sd-model-Q4_K_M.gguf']);
    expect(await ggufFetched('hf.co/acme/sd-GGUF:sd-model-Q4_0_4_4.gguf')).toEqual(['main/sd-model-Q4_0_4_4.gguf']);
    // The tag was never asked for as a git revision.
    expect(hubCalls('acme/sd-GGUF').some((r) => /\/tree\/(?!main)/.test(r.url))).toBe(false);
    expect((await leftovers(modelsDir)).filter((e) => e.startsWith('acme--sd-GGUF') || e.startsWith('.download-'))).toEqual([]);

    // An ONNX repository keeps :<revision>.
    const before = requests.length;
    const res = await post(app, job('hf.co/acme/tiny:v1'));
    expect(res.statusCode, res.body).toBe(200);
    const calls = requests.slice(before).map((r) => r.url);
    expect(calls.some((u) => u.startsWith('/api/models/acme/tiny/tree/v1'))).toBe(true);
    expect(calls.filter((u) => u.includes('/resolve/')).every((u) => u.includes('/resolve/v1/'))).toBe(true);
    expect(await readdir(modelsDir)).toContain('acme--tiny--v1');
  });

  it('a tag matching no file, or several, is a 400 on model listing the files; nothing is fetched', async () => {
    const before = requests.length;
    const none = await post(app, job('hf.co/acme/sd-GGUF:Q5_K_S'));
    expect(none.statusCode).toBe(400);
    expect(none.json().error.param).toBe('model');
    expect(none.json().error.message).toContain('offers sd-model-F16.gguf, sd-model-Q4_0.gguf, sd-model-Q4_0_4_4.gguf, sd-model-Q4_K_M.gguf, sd-model-Q8_0.gguf');
    const several = await post(app, job('hf.co/acme/twice-GGUF'));
    expect(several.statusCode).toBe(400);
    expect(several.json().error.message).toMatch(/2 files match no tag \(the Q4_0 file\): a-Q4_0\.gguf, b-Q4_0\.gguf/);
    const missing = await post(app, job('hf.co/acme/sd-GGUF:other.gguf'));
    expect(missing.statusCode).toBe(400);
    expect(missing.json().error.message).toContain('the file "other.gguf"');
    expect(requests.slice(before).some((r) => r.url.includes('/resolve/'))).toBe(false);
  });

  it('a diffusers safetensors repository fetches each component once (plain weights, else fp16), no .bin/.msgpack/extras', async () => {
    await post(app, job('hf.co/acme/diffusers-st'));
    expect(fetched('acme/diffusers-st').sort()).toEqual(
      [
        'model_index.json',
        'scheduler/scheduler_config.json',
        'text_encoder/config.json',
        'text_encoder/model.safetensors',
        'tokenizer/vocab.json',
        'unet/config.json',
        'unet/diffusion_pytorch_model.safetensors',
        'vae/config.json',
        'vae/diffusion_pytorch_model.fp16.safetensors',
      ].sort(),
    );
    expect((await readdir(modelsDir)).filter((e) => e.startsWith('acme--diffusers-st') || e.startsWith('.download-'))).toEqual([]);
  });

  it('a single-file safetensors repository fetches only its checkpoint', async () => {
    await post(app, job('hf.co/acme/single-st'));
    expect(fetched('acme/single-st')).toEqual(['model.safetensors']);
    expect((await readdir(modelsDir)).filter((e) => e.startsWith('acme--single-st') || e.startsWith('.download-'))).toEqual([]);
  });
});
