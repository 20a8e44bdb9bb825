/**
 * What `hf.co/…` references may download (issue 10 item 1) and which file a tag names (issue 15's tag rule),
 * against a local node:http fake of the Hugging Face Hub (tree API + /resolve/; no real network):
 * HF_ALLOWED_REPOS (403 naming `model`), the `download_any_repo` job flag of `models:download` keys,
 * HF_TOKEN only for allowed repositories, HF_MAX_MODEL_BYTES and MODELS_DIR_MAX_BYTES checked from the
 * listing before any file is fetched (413), a download that fails to load removed, GGUF tags, the files a
 * safetensors repository downloads.
 */
import { createServer, type Server } from 'node:http';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../../gpu-service/src/app';
import { folderBytes, HfReferenceError, pickGgufFile, planHfDownload } from '../../../gpu-service/src/models/hf-download';
import { parseAllowedRepos, repoAllowed, type HfDownloadPolicy } from '../../../gpu-service/src/models/hf-policy';
import { parseHfReference } from '@image-api/shared/hf-reference';
import { buildTinyModelFiles } from '../../../scripts/tiny-model/generate';

const TOKEN = 'hf-policy-test-token-0123456789';
const HF_TOKEN = 'hf_secret_token_for_allowed_repos';
const auth = { authorization: `Bearer ${TOKEN}` };
const FILES = buildTinyModelFiles();
const TINY_BYTES = [...FILES].filter(([p]) => p !== 'README.md').reduce((n, [, b]) => n + b.length, 0);
const GGUF_FILES = ['sd-Q4_0.gguf', 'sd-Q8_0.gguf', 'sd-F16.gguf', 'sd-Q4_K_M.gguf', 'sd-Q4_K_S.gguf', 'sd-Q6_K.gguf', 'sd-extra-Q6_K.gguf'];
/** Diffusers folder of safetensors with the duplicates a real repository carries. */
const DIFFUSERS_FILES = [
  'model_index.json',
  'README.md',
  'v1-5-pruned.safetensors',
  'v1-5-pruned.ckpt',
  'scheduler/scheduler_config.json',
  'tokenizer/vocab.json',
  'tokenizer/merges.txt',
  'text_encoder/config.json',
  'text_encoder/model.safetensors',
  'text_encoder/model.fp16.safetensors',
  'text_encoder/pytorch_model.bin',
  'unet/config.json',
  'unet/diffusion_pytorch_model.safetensors',
  'unet/diffusion_pytorch_model.fp16.safetensors',
  'unet/diffusion_pytorch_model.bin',
  'unet/diffusion_pytorch_model.msgpack',
  'vae/config.json',
  'vae/diffusion_pytorch_model.fp16.safetensors',
  'vae/diffusion_pytorch_model.bin',
  'safety_checker/model.safetensors',
  'feature_extractor/preprocessor_config.json',
];

interface Seen {
  url: string;
  authorization?: string;
}
const seen: Seen[] = [];
let hub: Server;
let endpoint: string;

/** Bytes a repository serves at `path` (null: 404). acme/broken's UNet is not an ONNX graph. */
function fileOf(repo: string, path: string): Uint8Array | null {
  if (repo === 'sd-GGUF') return GGUF_FILES.includes(path) ? Buffer.from(`GGUF fake ${path}`) : null;
  const bytes = FILES.get(path);
  if (!bytes) return null;
  if (repo === 'broken' && path === 'unet/model.onnx') return Buffer.alloc(bytes.length, 7);
  return bytes;
}

/** The listing of a repository (null: 404). */
function listing(org: string, repo: string): Array<{ type: string; path: string; size: number }> | null {
  if (repo === 'sd-GGUF') return [...GGUF_FILES, 'README.md'].map((path) => ({ type: 'file', path, size: path === 'README.md' ? 5 : Buffer.from(`GGUF fake ${path}`).length }));
  if (repo === 'diffusers') return DIFFUSERS_FILES.map((path) => ({ type: 'file', path, size: 10 }));
  if (repo === 'single') return ['README.md', 'model.safetensors'].map((path) => ({ type: 'file', path, size: 10 }));
  if (repo === 'two-singles') return ['a.safetensors', 'b.safetensors'].map((path) => ({ type: 'file', path, size: 10 }));
  if (['tiny', 'broken', 'big'].includes(repo) || (org === 'other' && repo === 'tiny')) {
    return [...FILES].map(([path, b]) => ({ type: 'file', path, size: repo === 'big' && path === 'unet/model.onnx' ? 5e12 : b.length }));
  }
  return null;
}

beforeAll(async () => {
  hub = createServer((req, res) => {
    const url = req.url ?? '';
    seen.push({ url, authorization: req.headers.authorization });
    const tree = /^\/api\/models\/([\w-]+)\/([\w-]+)\/tree\/main\?/.exec(url);
    if (tree) {
      const list = listing(tree[1], tree[2]);
      if (!list) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify(list));
    }
    const file = /^\/([\w-]+)\/([\w-]+)\/resolve\/main\/(.+)$/.exec(url);
    const bytes = file ? fileOf(file[2], decodeURIComponent(file[3])) : null;
    if (!bytes) return void res.writeHead(404).end('not found');
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) });
    res.end(bytes);
  });
  await new Promise<void>((r) => hub.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(hub.address() as { port: number }).port}`;
});
afterAll(async () => {
  await new Promise((r) => hub?.close(r));
});

const apps: FastifyInstance[] = [];
afterAll(async () => {
  for (const a of apps) await a.close();
});

/** A GPU service over a fresh MODELS_DIR with `policy`. */
async function service(policy: HfDownloadPolicy): Promise<{ app: FastifyInstance; modelsDir: string }> {
  const modelsDir = await mkdtemp(join(tmpdir(), 'models-hf-policy-'));
  const app = await buildApp({ modelsDir, serviceToken: TOKEN, executionProviders: ['cpu'], intraOpNumThreads: 1, queueMax: 4, hfEndpoint: endpoint, hfToken: HF_TOKEN, hfPolicy: policy, modelWarmUp: false });
  apps.push(app);
  return { app, modelsDir };
}

const job = (model: string, over: Record<string, unknown> = {}) => ({
  id: `hfp-${Math.random().toString(36).slice(2)}`,
  model,
  prompt: 'a red apple',
  width: 64,
  height: 64,
  seed: 11,
  steps: 2,
  sampler: 'euler',
  ...over,
});

const resolved = (repo: string) => seen.filter((s) => s.url.startsWith(`/${repo}/resolve/`)).map((s) => s.url);
const leftovers = async (dir: string) => (await readdir(dir)).filter((e) => e.startsWith('.download-'));

describe('HF_ALLOWED_REPOS and the models:download flag', () => {
  it('a repository outside HF_ALLOWED_REPOS is a 403 naming model and the rule; nothing is fetched', async () => {
    const { app, modelsDir } = await service({ allowedRepos: ['acme/*'], maxModelBytes: 0, modelsDirMaxBytes: 0 });
    const before = seen.length;
    const res = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job('hf.co/other/tiny') });
    expect(res.statusCode).toBe(403);
    expect(res.json().error).toMatchObject({ code: 'model_download_forbidden', param: 'model', type: 'permission_error' });
    expect(res.json().error.message).toMatch(/other\/tiny.*matches none of HF_ALLOWED_REPOS \(acme\/\*\).*models:download/);
    expect(seen.length).toBe(before);
    expect(await readdir(modelsDir)).toEqual([]);
    // /v1/models says what is allowed.
    const models = (await app.inject({ method: 'GET', url: '/v1/models', headers: auth })).json();
    expect(models.hf_downloads).toEqual({ allowed_repos: ['acme/*'], max_model_bytes: 0, models_dir_max_bytes: 0 });
  });

  it('an empty HF_ALLOWED_REPOS refuses every reference for tenants', async () => {
    const { app } = await service({ allowedRepos: [], maxModelBytes: 0, modelsDirMaxBytes: 0 });
    const res = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job('hf.co/acme/tiny') });
    expect(res.statusCode).toBe(403);
    expect(res.json().error.param).toBe('model');
    expect(res.json().error.message).toMatch(/HF_ALLOWED_REPOS is empty/);
  });

  it('a download_any_repo job downloads any repository, without HF_TOKEN; allowed repositories get the token', async () => {
    const { app, modelsDir } = await service({ allowedRepos: ['acme/tiny'], maxModelBytes: 0, modelsDirMaxBytes: 0 });
    const admin = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job('hf.co/other/tiny', { download_any_repo: true }) });
    expect(admin.statusCode, admin.body).toBe(200);
    const other = seen.filter((s) => s.url.includes('/other/tiny/'));
    expect(other.length).toBeGreaterThan(1);
    expect(other.every((s) => s.authorization === undefined)).toBe(true);
    expect(await readdir(modelsDir)).toContain('other--tiny');

    const tenant = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job('hf.co/acme/tiny') });
    expect(tenant.statusCode, tenant.body).toBe(200);
    const acme = seen.filter((s) => s.url.includes('/acme/tiny/'));
    expect(acme.length).toBeGreaterThan(1);
    expect(acme.every((s) => s.authorization === `Bearer ${HF_TOKEN}`)).toBe(true);
  });
});

describe('size limits, checked from the listing before downloading', () => {
  it('HF_MAX_MODEL_BYTES: a repository over it is a 413 naming model and the limit; no file is fetched', async () => {
    const { app, modelsDir } = await service({ allowedRepos: ['acme/*'], maxModelBytes: TINY_BYTES - 1, modelsDirMaxBytes: 0 });
    const res = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job('hf.co/acme/tiny') });
    expect(res.statusCode).toBe(413);
    expect(res.json().error).toMatchObject({ code: 'model_too_large', param: 'model' });
    expect(res.json().error.message).toContain(`its files take ${TINY_BYTES} bytes, more than HF_MAX_MODEL_BYTES (${TINY_BYTES - 1})`);
    const big = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job('hf.co/acme/big') });
    expect(big.statusCode).toBe(413);
    expect(resolved('acme/big')).toEqual([]);
    expect(await readdir(modelsDir)).toEqual([]);
  });

  it('MODELS_DIR_MAX_BYTES: the files already there plus this download must fit', async () => {
    const { app, modelsDir } = await service({ allowedRepos: ['acme/*', 'other/*'], maxModelBytes: 0, modelsDirMaxBytes: 2 * TINY_BYTES - 1 });
    const first = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job('hf.co/acme/tiny') });
    expect(first.statusCode, first.body).toBe(200);
    const used = await folderBytes(modelsDir);
    expect(used).toBeGreaterThanOrEqual(TINY_BYTES);
    const before = resolved('other/tiny').length;
    const second = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job('hf.co/other/tiny') });
    expect(second.statusCode).toBe(413);
    expect(second.json().error).toMatchObject({ code: 'model_too_large', param: 'model' });
    expect(second.json().error.message).toContain(`MODELS_DIR holds ${used}, more than MODELS_DIR_MAX_BYTES (${2 * TINY_BYTES - 1})`);
    expect(resolved('other/tiny').length).toBe(before);
    expect(await readdir(modelsDir)).not.toContain('other--tiny');
  });
});

describe('failed downloads leave nothing behind', () => {
  it('a downloaded model that fails to load is removed from MODELS_DIR', async () => {
    const { app, modelsDir } = await service({ allowedRepos: ['acme/*'], maxModelBytes: 0, modelsDirMaxBytes: 0 });
    const res = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job('hf.co/acme/broken') });
    expect(res.statusCode).toBeGreaterThanOrEqual(500);
    expect(res.json().error.param).toBe('model');
    expect(resolved('acme/broken')).toContain('/acme/broken/resolve/main/unet/model.onnx');
    expect(await readdir(modelsDir)).toEqual([]);
    const rows = (await app.inject({ method: 'GET', url: '/v1/models', headers: auth })).json().data;
    expect(rows.map((r: { id: string }) => r.id)).not.toContain('acme--broken');
  });
});

describe('the tag rule of GGUF repositories', () => {
  let app: FastifyInstance;
  let modelsDir: string;
  beforeAll(async () => {
    ({ app, modelsDir } = await service({ allowedRepos: ['acme/*'], maxModelBytes: 0, modelsDirMaxBytes: 0 }));
  });

  const fetched = async (model: string) => {
    const before = resolved('acme/sd-GGUF').length;
    const res = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job(model) });
    return { res, files: resolved('acme/sd-GGUF').slice(before) };
  };

  it('no tag: the Q4_0 file; :QUANT (any case, FP16 = F16) and :file.gguf pick one file of revision main', async () => {
    expect((await fetched('hf.co/acme/sd-GGUF')).files).toEqual(['/acme/sd-GGUF/resolve/main/sd-Q4_0.gguf']);
    expect((await fetched('hf.co/acme/sd-GGUF:q8_0')).files).toEqual(['/acme/sd-GGUF/resolve/main/sd-Q8_0.gguf']);
    expect((await fetched('hf.co/acme/sd-GGUF:FP16')).files).toEqual(['/acme/sd-GGUF/resolve/main/sd-F16.gguf']);
    expect((await fetched('hf.co/acme/sd-GGUF:Q4_K_M')).files).toEqual(['/acme/sd-GGUF/resolve/main/sd-Q4_K_M.gguf']);
    expect((await fetched('hf.co/acme/sd-GGUF:sd-Q4_K_S.gguf')).files).toEqual(['/acme/sd-GGUF/resolve/main/sd-Q4_K_S.gguf']);
    // A fake file is no usable model: it is not kept.
    expect((await readdir(modelsDir)).filter((e) => e.startsWith('acme--sd-GGUF'))).toEqual([]);
    expect(await leftovers(modelsDir)).toEqual([]);
  });

  it('a tag matching no file or several is a 400 naming model and listing the files; nothing is fetched', async () => {
    for (const [model, why] of [
      ['hf.co/acme/sd-GGUF:Q5_0', /no file of the repository matches the quantization "Q5_0"/],
      ['hf.co/acme/sd-GGUF:Q4_K', /no file of the repository matches the quantization "Q4_K"/],
      ['hf.co/acme/sd-GGUF:Q6_K', /2 files match the quantization "Q6_K": sd-Q6_K\.gguf, sd-extra-Q6_K\.gguf/],
      ['hf.co/acme/sd-GGUF:missing.gguf', /no file of the repository matches the file "missing\.gguf"/],
    ] as const) {
      const { res, files } = await fetched(model);
      expect(res.statusCode, model).toBe(400);
      expect(res.json().error.param).toBe('model');
      expect(res.json().error.message).toMatch(why);
      expect(res.json().error.message).toContain(`offers ${[...GGUF_FILES].sort().join(', ')}`);
      expect(files).toEqual([]);
    }
  });

  it('pickGgufFile follows the same rule', () => {
    expect(pickGgufFile(GGUF_FILES, undefined)).toBe('sd-Q4_0.gguf');
    expect(pickGgufFile(['sub/m-f16.gguf', 'sub/m-Q4_0.gguf'], 'fp16')).toBe('sub/m-f16.gguf');
    expect(pickGgufFile(['sub/m-f16.gguf'], 'm-F16.gguf')).toBe('sub/m-f16.gguf');
    expect(() => pickGgufFile(['m-Q4_0_4_4.gguf', 'm-Q8_0.gguf'], undefined)).toThrow(HfReferenceError);
  });
});

describe('what safetensors repositories download', () => {
  const opts = () => ({ endpoint });

  it('a diffusers folder: model_index.json and, per component, its configs and one set of safetensors weights', async () => {
    const plan = await planHfDownload(parseHfReference('hf.co/acme/diffusers'), opts());
    expect(plan.layout).toBe('diffusers');
    expect(plan.files.map((f) => f.path).sort()).toEqual(
      [
        'model_index.json',
        'scheduler/scheduler_config.json',
        'text_encoder/config.json',
        'text_encoder/model.safetensors',
        'tokenizer/merges.txt',
        'tokenizer/vocab.json',
        'unet/config.json',
        'unet/diffusion_pytorch_model.safetensors',
        'vae/config.json',
        'vae/diffusion_pytorch_model.fp16.safetensors',
      ].sort(),
    );
    expect(plan.totalBytes).toBe(100);
  });

  it('a single-file checkpoint repository: its one .safetensors file; several: a list to choose from', async () => {
    const plan = await planHfDownload(parseHfReference('hf.co/acme/single'), opts());
    expect(plan).toMatchObject({ layout: 'single-file', files: [{ path: 'model.safetensors', size: 10 }] });
    await expect(planHfDownload(parseHfReference('hf.co/acme/two-singles'), opts())).rejects.toThrow(/2 checkpoint files: a\.safetensors, b\.safetensors \(name one as :<file>\.safetensors\)/);
  });
});

describe('HF_ALLOWED_REPOS patterns', () => {
  it('globs over <org>/<repo>, case-insensitive; a malformed pattern names the variable', () => {
    const patterns = parseAllowedRepos(' stabilityai/* , acme/tiny-?,');
    expect(patterns).toEqual(['stabilityai/*', 'acme/tiny-?']);
    expect(repoAllowed(patterns, 'StabilityAI/sdxl-turbo')).toBe(true);
    expect(repoAllowed(patterns, 'acme/tiny-2')).toBe(true);
    expect(repoAllowed(patterns, 'acme/tiny-22')).toBe(false);
    expect(repoAllowed(patterns, 'stabilityai.evil/x')).toBe(false);
    expect(repoAllowed([], 'acme/tiny')).toBe(false);
    expect(() => parseAllowedRepos('stabilityai')).toThrow(/HF_ALLOWED_REPOS: "stabilityai"/);
  });
});
