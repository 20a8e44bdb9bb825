/**
 * Issue 15: a GGUF file downloaded through an `hf.co/<org>/<repo>:<tag>` reference runs as a top-level model.
 * A local node:http fake of the Hugging Face Hub (tree API + /resolve/) serves a GGUF repository with the FLUX
 * transformer fixture in two quantizations (../shared/fixtures/checkpoints-dit, city96 layout), each with a
 * `<stem>.json` sidecar holding what the tiny model's tensors cannot tell (its RoPE split); the encoders and VAE
 * come from the deployment's DEFAULT_BASE_FLUX. The downloaded model is listed as FLUX.1-schnell with its
 * quantization and gives, pixel for pixel, the image of the same file placed under MODELS_DIR/checkpoints.
 */
import { createServer, type Server } from 'node:http';
import { copyFile, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { buildApp } from '../../../gpu-service/src/app';
import { fixtureDir, hasFixture } from '../../helpers/checkpoint-fixtures';
import { addFixtureDiffusersFolder, makeModelsDir, TOKENIZER_SUBDIR } from '../../helpers/checkpoint-models-dir';

const available = hasFixture('checkpoints-dit') && hasFixture('clip-tokenizer');
const TOKEN = 'hf-gguf-model-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
const BASE = 'flux/schnell-diffusers';
const REPO = 'acme/flux-tiny-GGUF';
let hub: Server;
let app: FastifyInstance;
let modelsDir: string;
const files = new Map<string, Buffer>();

beforeAll(async () => {
  if (!available) return;
  const dit = fixtureDir('checkpoints-dit/flux-schnell');
  const transformer = JSON.parse(await readFile(path.join(dit, 'diffusers/transformer/config.json'), 'utf8')) as Record<string, unknown>;
  const sidecar = Buffer.from(JSON.stringify({ transformer: { axes_dims_rope: transformer.axes_dims_rope } }));
  for (const q of ['Q8_0', 'Q4_0']) {
    files.set(`flux1-schnell-tiny-${q}.gguf`, await readFile(path.join(dit, `flux1-schnell-tiny-${q}.gguf`)));
    files.set(`flux1-schnell-tiny-${q}.json`, sidecar);
  }
  files.set('README.md', Buffer.from('tiny'));
  hub = createServer((req, res) => {
    const url = req.url ?? '';
    if (url.startsWith(`/api/models/${REPO}/tree/main`)) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify([...files].map(([p, b]) => ({ type: 'file', path: p, size: b.length }))));
    }
    const m = new RegExp(`^/${REPO}/resolve/main/(.+)$`).exec(url);
    const bytes = m ? files.get(decodeURIComponent(m[1])) : undefined;
    if (!bytes) return void res.writeHead(404).end('not found');
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) });
    res.end(bytes);
  });
  await new Promise<void>((r) => hub.listen(0, '127.0.0.1', r));
  modelsDir = await makeModelsDir('hf-gguf-');
  await addFixtureDiffusersFolder(modelsDir, 'checkpoints-dit/flux-schnell', BASE);
  // The same Q8_0 file placed by hand, to compare pixels with.
  const local = path.join(modelsDir, 'checkpoints', 'flux/local-Q8_0.gguf');
  await mkdir(path.dirname(local), { recursive: true });
  await copyFile(path.join(dit, 'flux1-schnell-tiny-Q8_0.gguf'), local);
  await writeFile(local.replace(/\.gguf$/, '.json'), sidecar);
  app = await buildApp({
    modelsDir,
    serviceToken: TOKEN,
    executionProviders: ['cpu'],
    intraOpNumThreads: 1,
    queueMax: 4,
    hfEndpoint: `http://127.0.0.1:${(hub.address() as { port: number }).port}`,
    hfPolicy: { allowedRepos: ['acme/*'], maxModelBytes: 0, modelsDirMaxBytes: 0 },
    modelWarmUp: false,
    checkpointDtype: 'float32',
    clipTokenizerDir: path.join(modelsDir, TOKENIZER_SUBDIR),
    defaultBases: { flux: BASE },
  });
}, 120_000);
afterAll(async () => {
  await app?.close();
  await new Promise((r) => hub?.close(r));
  if (modelsDir) await rm(modelsDir, { recursive: true, force: true });
});

const job = (model: string) => ({ id: `gguf-${Math.random().toString(36).slice(2)}`, model, prompt: 'a lighthouse', width: 64, height: 64, seed: 3, steps: 2, cfg_scale: 1, sampler: 'euler', scheduler: 'simple' });

describe.skipIf(!available)('an hf.co GGUF download runs as a top-level model', () => {
  it('downloads the tagged file with its sidecar, lists it as FLUX.1-schnell Q8_0 and draws the same pixels as the local copy', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job(`hf.co/${REPO}:Q8_0`) });
    expect(res.statusCode, res.body).toBe(200);
    const folder = (await readdir(modelsDir)).find((e) => e.startsWith('acme--flux-tiny-GGUF'));
    expect(folder).toBeDefined();
    expect((await readdir(path.join(modelsDir, folder!))).sort()).toEqual(['flux1-schnell-tiny-Q8_0.gguf', 'flux1-schnell-tiny-Q8_0.json']);
    const list = (await app.inject({ method: 'GET', url: '/v1/models', headers: auth })).json() as { data: Array<Record<string, unknown>> };
    expect(list.data.find((m) => m.id === folder)).toMatchObject({ kind: 'checkpoint', format: 'gguf', architecture: 'FLUX.1-schnell', stored_dtype: 'Q8_0', gguf_architecture: 'flux', capabilities: ['txt2img', 'img2img', 'inpaint'] });
    expect(list.data.find((m) => m.id === folder)?.error).toBeUndefined();
    const local = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job('flux/local-Q8_0.gguf') });
    expect(local.statusCode, local.body).toBe(200);
    // The PNGs differ in their parameters chunk (the receipt names the model): compare the pixels.
    const pixels = (r: typeof res) => sharp(Buffer.from((r.json() as { images: Array<{ b64: string }> }).images[0].b64, 'base64')).raw().toBuffer();
    const [downloaded, placed] = await Promise.all([pixels(res), pixels(local)]);
    expect(downloaded.length).toBe(64 * 64 * 3);
    expect(downloaded.equals(placed)).toBe(true);
  });

  it('no tag picks the Q4_0 file, which runs too', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job(`hf.co/${REPO}`) });
    expect(res.statusCode, res.body).toBe(200);
    const list = (await app.inject({ method: 'GET', url: '/v1/models', headers: auth })).json() as { data: Array<Record<string, unknown>> };
    expect(list.data.find((m) => m.id === 'acme--flux-tiny-GGUF')).toMatchObject({ format: 'gguf', stored_dtype: 'Q4_0', architecture: 'FLUX.1-schnell' });
  });
});
