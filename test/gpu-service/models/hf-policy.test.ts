/**
 * What `hf.co/<org>/<repo>` references may download (issue 10 item 1) and which files a reference means
 * (issue 15's tag rule), against a local node:http fake of the Hugging Face Hub (tree API + /resolve/ at any
 * revision; no real network): HF_ALLOWED_REPOS (empty = 403 on `model`), the `download_any_repo` job flag of a
 * `models:download` key, HF_TOKEN only for allowed repositories, HF_MAX_MODEL_BYTES and MODELS_DIR_MAX_BYTES
 * checked from the listing before any file is fetched (413) and while bytes arrive when there is no listing, a
 * download that fails to load removed, the GGUF tag rule (no tag → Q4_0, :QUANT, :file.gguf, none/several →
 * 400 listing the files), ONNX repositories keep :revision, safetensors repositories fetch only the files a
 * pipeline needs.
 * (One file: it merges test/gpu-service/hf-policy.test.ts and test/gpu-service/models/hf-download-policy.test.ts.)
 */
import { createServer, type Server } from 'node:http';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { parseHfReference } from '@image-api/shared/hf-reference';
import { buildApp } from '../../../gpu-service/src/app';
import { folderBytes, HfReferenceError, pickGgufFile, planHfDownload } from '../../../gpu-service/src/models/hf-download';
import { parseAllowedRepos, repoAllowed, type HfDownloadPolicy } from '../../../gpu-service/src/models/hf-policy';
import { buildTinyModelFiles } from '../../../scripts/tiny-model/generate';

const TOKEN = 'hf-policy-token-0123456789';
const HF_TOKEN = 'hf_secret_for_allowed_repos';
const auth = { authorization: `Bearer ${TOKEN}` };
const TINY = buildTinyModelFiles();
const TINY_BYTES = [...TINY].filter(([p]) => p !== 'README.md').reduce((n, [, b]) => n + b.length, 0);
const junk = (n: number) => Buffer.alloc(n, 7);
const GGUF_FILES = [
  'sd-model-Q4_0.gguf',
  'sd-model-Q4_0_4_4.gguf',
  'sd-model-Q8_0.gguf',
  'sd-model-F16.gguf',
  'sd-model-Q4_K_M.gguf',
  'sd-model-Q4_K_S.gguf',
  'sd-model-Q6_K.gguf',
  'sd-model-extra-Q6_K.gguf',
];
/** Files of a real diffusers repository with its duplicates (only planned: each served as 10 bytes). */
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
const tenBytes = (paths: string[]) => new Map(paths.map((p) => [p, junk(10)]));

/** The hub's repositories: path → bytes. */
const REPOS = new Map<string, Map<string, Uint8Array>>([
  ['acme/tiny', TINY],
  ['other/tiny', TINY],
  // Served file by file, but without a tree API: sizes are unknown until the bytes arrive.
  ['acme/notree', TINY],
  // The tiny model with a UNet that is no ONNX graph: it downloads, then fails to load.
  ['acme/broken', new Map<string, Uint8Array>([...TINY].map(([p, b]) => [p, p === 'unet/model.onnx' ? junk(b.length) : b]))],
  // Listed with a 5 TB UNet (LISTED_SIZES): refused from the listing, never fetched.
  ['acme/big', TINY],
  ['acme/sd-GGUF', new Map<string, Uint8Array>([['README.md', junk(10)], ...GGUF_FILES.map((f, i): [string, Uint8Array] => [f, junk(40 + i)])])],
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
  ['acme/diffusers', tenBytes(DIFFUSERS_FILES)],
  ['acme/single', tenBytes(['README.md', 'model.safetensors'])],
  ['acme/two-singles', tenBytes(['a.safetensors', 'b.safetensors'])],
]);
/** Sizes the tree API announces instead of the served bytes' length. */
const LISTED_SIZES = new Map([['acme/big', new Map([['unet/model.onnx', 5e12]])]]);

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
      if (!files) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
      const sizes = LISTED_SIZES.get(tree[1]);
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify([...files].map(([path, b]) => ({ type: 'file', path, size: sizes?.get(path) ?? b.length }))));
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

/** A GPU service over a fresh MODELS_DIR with this policy, holding `existingBytes` of another file first. */
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
    modelWarmUp: false,
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
const modelList = async (app: FastifyInstance) => (await app.inject({ method: 'GET', url: '/v1/models', headers: auth })).json();
const hubCalls = (repo: string) => requests.filter((r) => r.url.includes(`/${repo}/`));
/** Paths fetched from `repo` (after /resolve/<revision>/), in order. */
const fetched = (repo: string) => hubCalls(repo).filter((r) => r.url.includes('/resolve/')).map((r) => decodeURIComponent(r.url.replace(/^.*\/resolve\/[^/]+\//, '')));
/** What MODELS_DIR holds besides `keep`: no partial or failed download may be left. */
const leftovers = async (dir: string, keep: string[] = []) => (await readdir(dir)).filter((e) => !keep.includes(e));

describe('HF_ALLOWED_REPOS and the models:download flag', () => {
  it('empty: every hf.co reference is refused with 403 on model before the hub is asked; /v1/models says so', async () => {
    const { app, modelsDir } = await service({});
    const before = requests.length;
    const res = await post(app, job('hf.co/acme/tiny'));
    expect(res.statusCode).toBe(403);
    expect(res.json().error).toMatchObject({ code: 'model_download_forbidden', param: 'model', type: 'permission_error' });
    expect(res.json().error.message).toMatch(/HF_ALLOWED_REPOS is empty.*models:download/);
    expect(requests.length).toBe(before);
    expect(await leftovers(modelsDir)).toEqual([]);
    expect((await modelList(app)).hf_downloads).toEqual({ allowed_repos: [], max_model_bytes: 0, models_dir_max_bytes: 0 });
  });

  it('a repository outside the patterns is refused; one inside downloads with HF_TOKEN; download_any_repo downloads any, without the token', async () => {
    const { app, modelsDir } = await service({ allowedRepos: ['acme/*'] });
    const refused = await post(app, job('hf.co/other/tiny'));
    expect(refused.statusCode).toBe(403);
    expect(refused.json().error).toMatchObject({ code: 'model_download_forbidden', param: 'model', type: 'permission_error' });
    expect(refused.json().error.message).toMatch(/"other\/tiny" matches none of HF_ALLOWED_REPOS \(acme\/\*\).*models:download/);
    expect(hubCalls('other/tiny')).toEqual([]);
    expect(await leftovers(modelsDir)).toEqual([]);

    const allowed = await post(app, job('hf.co/acme/tiny'));
    expect(allowed.statusCode, allowed.body).toBe(200);
    expect(hubCalls('acme/tiny').length).toBeGreaterThan(1);
    expect(hubCalls('acme/tiny').every((r) => r.authorization === `Bearer ${HF_TOKEN}`)).toBe(true);

    const admin = await post(app, job('hf.co/other/tiny', { download_any_repo: true }));
    expect(admin.statusCode, admin.body).toBe(200);
    expect(hubCalls('other/tiny').length).toBeGreaterThan(1);
    expect(hubCalls('other/tiny').every((r) => r.authorization === undefined)).toBe(true);
    expect((await leftovers(modelsDir)).sort()).toEqual(['acme--tiny', 'other--tiny']);
    expect((await modelList(app)).hf_downloads).toEqual({ allowed_repos: ['acme/*'], max_model_bytes: 0, models_dir_max_bytes: 0 });
  });
});

describe('size limits, checked from the listing before any file is fetched', () => {
  it('HF_MAX_MODEL_BYTES: a model one byte over (or a listed 5 TB one) is refused with 413 on model; nothing is fetched or left', async () => {
    const { app, modelsDir } = await service({ allowedRepos: ['acme/*'], maxModelBytes: TINY_BYTES - 1 });
    const before = requests.length;
    const res = await post(app, job('hf.co/acme/tiny'));
    expect(res.statusCode).toBe(413);
    expect(res.json().error).toMatchObject({ code: 'model_too_large', param: 'model' });
    expect(res.json().error.message).toContain(`its files take ${TINY_BYTES} bytes, more than HF_MAX_MODEL_BYTES (${TINY_BYTES - 1})`);
    const big = await post(app, job('hf.co/acme/big'));
    expect(big.statusCode).toBe(413);
    expect(big.json().error).toMatchObject({ code: 'model_too_large', param: 'model' });
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
    expect(res.json().error).toMatchObject({ code: 'model_too_large', param: 'model' });
    expect(res.json().error.message).toContain(`MODELS_DIR holds 1000, more than MODELS_DIR_MAX_BYTES (${TINY_BYTES + 500})`);
    expect(requests.slice(before).some((r) => r.url.includes('/resolve/'))).toBe(false);
    expect(await leftovers(modelsDir)).toEqual(['existing.bin']);

    const fits = await service({ allowedRepos: ['acme/*'], maxModelBytes: TINY_BYTES, modelsDirMaxBytes: TINY_BYTES + 1000 }, 1000);
    const ok = await post(fits.app, job('hf.co/acme/tiny'));
    expect(ok.statusCode, ok.body).toBe(200);
    expect((await leftovers(fits.modelsDir)).sort()).toEqual(['acme--tiny', 'existing.bin']);
  });

  it('MODELS_DIR_MAX_BYTES counts the models downloaded before: a second that does not fit is refused and not fetched', async () => {
    const { app, modelsDir } = await service({ allowedRepos: ['acme/*', 'other/*'], modelsDirMaxBytes: 2 * TINY_BYTES - 1 });
    const first = await post(app, job('hf.co/acme/tiny'));
    expect(first.statusCode, first.body).toBe(200);
    const used = await folderBytes(modelsDir);
    expect(used).toBeGreaterThanOrEqual(TINY_BYTES);
    const before = fetched('other/tiny').length;
    const second = await post(app, job('hf.co/other/tiny'));
    expect(second.statusCode).toBe(413);
    expect(second.json().error).toMatchObject({ code: 'model_too_large', param: 'model' });
    expect(second.json().error.message).toContain(`MODELS_DIR holds ${used}, more than MODELS_DIR_MAX_BYTES (${2 * TINY_BYTES - 1})`);
    expect(fetched('other/tiny').length).toBe(before);
    expect(await leftovers(modelsDir)).toEqual(['acme--tiny']);
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

  it('a downloaded model that fails to load is removed from MODELS_DIR and not listed', async () => {
    const { app, modelsDir } = await service({ allowedRepos: ['acme/*'] });
    const res = await post(app, job('hf.co/acme/broken'));
    expect(res.statusCode).toBeGreaterThanOrEqual(500);
    expect(res.json().error.param).toBe('model');
    expect(fetched('acme/broken')).toContain('unet/model.onnx');
    expect(await leftovers(modelsDir)).toEqual([]);
    expect((await modelList(app)).data.map((r: { id: string }) => r.id)).not.toContain('acme--broken');
  });
});

describe('the tag rule (GGUF repositories) and file selection', () => {
  let app: FastifyInstance;
  let modelsDir: string;
  beforeAll(async () => {
    ({ app, modelsDir } = await service({ allowedRepos: ['acme/*'] }));
  });

  /** The answer to a job for `model` and the GGUF files it fetched (junk bytes: they fail to load and are removed). */
  async function gguf(model: string): Promise<{ res: Awaited<ReturnType<typeof post>>; files: string[] }> {
    const before = requests.length;
    const res = await post(app, job(model));
    const files = requests
      .slice(before)
      .filter((r) => r.url.includes('/resolve/'))
      .map((r) => r.url.replace(/^.*\/resolve\//, ''));
    return { res, files };
  }

  it('GGUF: no tag is the Q4_0 file (not Q4_0_4_4), :QUANT in any case (FP16 = F16), :file.gguf, at revision main; ONNX: :<revision>', async () => {
    expect((await gguf('hf.co/acme/sd-GGUF')).files).toEqual(['main/sd-model-Q4_0.gguf']);
    expect((await gguf('hf.co/acme/sd-GGUF:q8_0')).files).toEqual(['main/sd-model-Q8_0.gguf']);
    expect((await gguf('hf.co/acme/sd-GGUF:FP16')).files).toEqual(['main/sd-model-F16.gguf']);
    expect((await gguf('hf.co/acme/sd-GGUF:Q4_K_M')).files).toEqual(['main/sd-model-Q4_K_M.gguf']);
    expect((await gguf('hf.co/acme/sd-GGUF:sd-model-Q4_0_4_4.gguf')).files).toEqual(['main/sd-model-Q4_0_4_4.gguf']);
    expect((await gguf('hf.co/acme/sd-GGUF:sd-model-Q4_K_S.gguf')).files).toEqual(['main/sd-model-Q4_K_S.gguf']);
    // The tag was never asked for as a git revision.
    expect(hubCalls('acme/sd-GGUF').some((r) => /\/tree\/(?!main)/.test(r.url))).toBe(false);
    // A fake file is no usable model: it is not kept, and nothing half-written is left.
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
    for (const [model, why] of [
      ['hf.co/acme/sd-GGUF:Q5_0', /no file of the repository matches the quantization "Q5_0"/],
      // A prefix of Q4_K_M and Q4_K_S is no match.
      ['hf.co/acme/sd-GGUF:Q4_K', /no file of the repository matches the quantization "Q4_K"/],
      ['hf.co/acme/sd-GGUF:Q6_K', /2 files match the quantization "Q6_K": sd-model-Q6_K\.gguf, sd-model-extra-Q6_K\.gguf/],
      ['hf.co/acme/sd-GGUF:missing.gguf', /no file of the repository matches the file "missing\.gguf"/],
    ] as const) {
      const { res, files } = await gguf(model);
      expect(res.statusCode, model).toBe(400);
      expect(res.json().error.param).toBe('model');
      expect(res.json().error.message).toMatch(why);
      expect(res.json().error.message).toContain(`offers ${[...GGUF_FILES].sort().join(', ')}`);
      expect(files).toEqual([]);
    }
    const several = await gguf('hf.co/acme/twice-GGUF');
    expect(several.res.statusCode).toBe(400);
    expect(several.res.json().error.message).toMatch(/2 files match no tag \(the Q4_0 file\): a-Q4_0\.gguf, b-Q4_0\.gguf/);
    expect(several.files).toEqual([]);
  });

  it('pickGgufFile follows the same rule', () => {
    expect(pickGgufFile(GGUF_FILES, undefined)).toBe('sd-model-Q4_0.gguf');
    expect(pickGgufFile(['sub/m-f16.gguf', 'sub/m-Q4_0.gguf'], 'fp16')).toBe('sub/m-f16.gguf');
    expect(pickGgufFile(['sub/m-f16.gguf'], 'm-F16.gguf')).toBe('sub/m-f16.gguf');
    expect(() => pickGgufFile(['m-Q4_0_4_4.gguf', 'm-Q8_0.gguf'], undefined)).toThrow(HfReferenceError);
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

describe('download plans of safetensors repositories', () => {
  const opts = () => ({ endpoint });

  it('a diffusers folder: model_index.json and, per component, its configs and one set of safetensors weights (no root checkpoint, .ckpt, .bin, fp16 twin)', async () => {
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
  it('globs over <org>/<repo>, case-insensitive, a plain name matches itself only; a malformed pattern names the variable', () => {
    const patterns = parseAllowedRepos(' stabilityai/* , acme/tiny-?,');
    expect(patterns).toEqual(['stabilityai/*', 'acme/tiny-?']);
    expect(repoAllowed(patterns, 'StabilityAI/sdxl-turbo')).toBe(true);
    expect(repoAllowed(patterns, 'acme/tiny-2')).toBe(true);
    expect(repoAllowed(patterns, 'acme/tiny-22')).toBe(false);
    expect(repoAllowed(patterns, 'stabilityai.evil/x')).toBe(false);
    expect(repoAllowed(['acme/tiny'], 'acme/tiny')).toBe(true);
    expect(repoAllowed(['acme/tiny'], 'acme/tiny2')).toBe(false);
    expect(repoAllowed([], 'acme/tiny')).toBe(false);
    expect(() => parseAllowedRepos('stabilityai')).toThrow(/HF_ALLOWED_REPOS: "stabilityai"/);
  });
});
