/**
 * Model management on real tiny-model folders: GET /v1/models kinds and capabilities detected from folder
 * contents, broken folders listed with their error, lazy loading, and LRU unloading under a memory budget
 * that never unloads a model with a running job.
 */
import { cp, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../gpu-service/src/app';
import { generateTinyModel } from '../../scripts/tiny-model/generate';
import { TINY_VARIANTS } from '../../scripts/tiny-model/variants';
import { streamJob } from './sse-client';

const TOKEN = 'models-test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
let modelsDir: string;

/** A safetensors file holding one float32 tensor per name. */
function safetensors(names: string[]): Buffer {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  names.forEach((name, i) => (header[name] = { dtype: 'F32', shape: [1], data_offsets: [i * 4, i * 4 + 4] }));
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, Buffer.alloc(names.length * 4)]);
}

beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'models-kinds-'));
  await generateTinyModel(join(modelsDir, 'tiny-a'));
  await cp(join(modelsDir, 'tiny-a'), join(modelsDir, 'tiny-b'), { recursive: true });
  await generateTinyModel(join(modelsDir, 'tiny-inpaint'), TINY_VARIANTS['tiny-analytic-inpaint']);
  await mkdir(join(modelsDir, 'style-lora'));
  await writeFile(join(modelsDir, 'style-lora', 'style.safetensors'), safetensors(['lora_unet_mid_block_attn.lora_down.weight', 'lora_unet_mid_block_attn.lora_up.weight', 'lora_unet_mid_block_attn.alpha']));
  await mkdir(join(modelsDir, 'peft-lora'));
  await writeFile(join(modelsDir, 'peft-lora', 'pytorch_lora_weights.safetensors'), safetensors(['unet.mid_block.attentions.0.to_q.lora_A.weight', 'unet.mid_block.attentions.0.to_q.lora_B.weight']));
  await mkdir(join(modelsDir, 'easy-negative'));
  await writeFile(join(modelsDir, 'easy-negative', 'easynegative.safetensors'), safetensors(['emb_params']));
  await mkdir(join(modelsDir, 'old-embedding'));
  await writeFile(join(modelsDir, 'old-embedding', 'charturner.pt'), Buffer.from('PK\u0003\u0004 not really a zip'));
  await mkdir(join(modelsDir, 'onnx-vae'));
  await cp(join(modelsDir, 'tiny-a', 'vae_decoder'), join(modelsDir, 'onnx-vae', 'vae_decoder'), { recursive: true });
  await mkdir(join(modelsDir, 'sd-vae-ft-mse'));
  await writeFile(join(modelsDir, 'sd-vae-ft-mse', 'vae.safetensors'), safetensors(['decoder.conv_in.weight', 'encoder.conv_in.weight', 'post_quant_conv.weight']));
  await mkdir(join(modelsDir, 'broken-json'));
  await writeFile(join(modelsDir, 'broken-json', 'model_index.json'), '{ nope');
  await mkdir(join(modelsDir, 'no-unet'));
  await cp(join(modelsDir, 'tiny-a', 'model_index.json'), join(modelsDir, 'no-unet', 'model_index.json'));
  await mkdir(join(modelsDir, 'empty-folder'));
  await mkdir(join(modelsDir, '.download-half-done'));
  await writeFile(join(modelsDir, '.download-half-done', 'model_index.json'), '{}');
});

const job = (model: string, over: Record<string, unknown> = {}) => ({
  id: `m-${Math.random().toString(36).slice(2)}`,
  model,
  prompt: 'a green field',
  width: 64,
  height: 64,
  seed: 3,
  steps: 4,
  sampler: 'euler',
  ...over,
});

describe('GET /v1/models', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildApp({ modelsDir, serviceToken: TOKEN, executionProviders: ['cpu'], intraOpNumThreads: 1, queueMax: 4 });
  });
  afterAll(async () => app?.close());

  it('lists every folder with its kind, capabilities, native size and error, and hides partial downloads', async () => {
    const rows = (await app.inject({ method: 'GET', url: '/v1/models', headers: auth })).json().data as Array<Record<string, any>>;
    const byId = Object.fromEntries(rows.map((r) => [r.id, r]));
    expect(Object.keys(byId).sort()).toEqual(
      ['broken-json', 'easy-negative', 'empty-folder', 'no-unet', 'old-embedding', 'onnx-vae', 'peft-lora', 'sd-vae-ft-mse', 'style-lora', 'tiny-a', 'tiny-b', 'tiny-inpaint'].sort(),
    );
    expect(byId['tiny-a']).toMatchObject({ kind: 'checkpoint', capabilities: ['txt2img', 'img2img', 'inpaint'], native_size: [256, 256], loaded: false });
    expect(byId['tiny-a'].error).toBeUndefined();
    expect(byId['tiny-a'].size_bytes).toBeGreaterThan(0);
    expect(byId['tiny-inpaint']).toMatchObject({ kind: 'checkpoint', capabilities: ['inpaint'] });
    expect(byId['style-lora']).toMatchObject({ kind: 'lora', capabilities: [] });
    expect(byId['peft-lora']).toMatchObject({ kind: 'lora' });
    expect(byId['easy-negative']).toMatchObject({ kind: 'textualinversion' });
    expect(byId['old-embedding']).toMatchObject({ kind: 'textualinversion' });
    expect(byId['onnx-vae']).toMatchObject({ kind: 'vae' });
    expect(byId['sd-vae-ft-mse']).toMatchObject({ kind: 'vae' });
    for (const id of ['style-lora', 'easy-negative', 'onnx-vae', 'sd-vae-ft-mse']) expect(byId[id].error, id).toBeUndefined();
    expect(byId['broken-json'].error).toMatch(/JSON/);
    expect(byId['no-unet'].error).toMatch(/missing unet\/model\.onnx/);
    expect(byId['empty-folder'].error).toMatch(/not a model folder/);
  });

  it('loads lazily: loaded turns true after the first job', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job('tiny-b') });
    expect(res.statusCode, res.body).toBe(200);
    const rows = (await app.inject({ method: 'GET', url: '/v1/models', headers: auth })).json().data as Array<Record<string, any>>;
    expect(rows.find((r) => r.id === 'tiny-b')!.loaded).toBe(true);
    expect(rows.find((r) => r.id === 'tiny-a')!.loaded).toBe(false);
  });

  it('refuses a job on a LoRA (400) or a broken folder (503) while checkpoints still serve', async () => {
    const lora = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job('style-lora') });
    expect(lora.statusCode).toBe(400);
    expect(lora.json().error).toMatchObject({ param: 'model', message: expect.stringMatching(/lora, not a checkpoint/) });
    const broken = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job('no-unet') });
    expect(broken.statusCode).toBe(503);
    expect(broken.json().error.code).toBe('model_unavailable');
    expect((await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job('tiny-a') })).statusCode).toBe(200);
  });
});

describe('MODEL_MEMORY_BUDGET', () => {
  let app: FastifyInstance;
  let base: string;
  let footprint: number;
  beforeAll(async () => {
    const probe = await buildApp({ modelsDir, serviceToken: TOKEN, executionProviders: ['cpu'], intraOpNumThreads: 1, queueMax: 4 });
    footprint = (await probe.inject({ method: 'GET', url: '/v1/models', headers: auth })).json().data.find((r: { id: string }) => r.id === 'tiny-a').size_bytes;
    await probe.close();
    // Room for one tiny model, not two; two slots so a second job can want another model while one runs.
    app = await buildApp({
      modelsDir,
      serviceToken: TOKEN,
      executionProviders: ['cpu'],
      intraOpNumThreads: 1,
      queueMax: 4,
      concurrency: 2,
      modelMemoryBudget: Math.floor(footprint * 1.5),
    });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => app?.close());

  const loaded = async () =>
    ((await app.inject({ method: 'GET', url: '/v1/models', headers: auth })).json().data as Array<{ id: string; loaded: boolean }>)
      .filter((r) => r.loaded)
      .map((r) => r.id);

  it('unloads the least recently used idle model to make room', async () => {
    const run = async (model: string) => expect((await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job(model) })).statusCode).toBe(200);
    await run('tiny-a');
    expect(await loaded()).toEqual(['tiny-a']);
    await run('tiny-b');
    expect(await loaded()).toEqual(['tiny-b']);
    await run('tiny-a');
    expect(await loaded()).toEqual(['tiny-a']);
    const metrics = (await app.inject({ method: 'GET', url: '/metrics', headers: auth })).body;
    expect(metrics).toMatch(/^gpu_service_model_unloads_total\{reason="memory_budget"\} 2$/m);
    expect(metrics).toMatch(new RegExp(`^gpu_service_model_memory_bytes ${footprint}$`, 'm'));
  });

  it('never unloads a model with a running job: the other model loads after it finishes', async () => {
    const long = await streamJob(base, TOKEN, job('tiny-a', { steps: 150, width: 512, height: 512, sampler: 'heun' }));
    await long.until((evs) => evs.some((e) => e.event === 'step'));
    const other = await streamJob(base, TOKEN, job('tiny-b'));
    // tiny-b needs tiny-a's memory: it may only start once tiny-a's job is over.
    const [longDoneAt, otherStartedAt] = await Promise.all([
      long.all().then(() => performance.now()),
      other.until((evs) => evs.some((e) => e.event === 'started')).then(() => performance.now()),
    ]);
    expect(otherStartedAt).toBeGreaterThan(longDoneAt);
    const longEvents = await long.all();
    const otherEvents = await other.all();
    expect(longEvents.at(-1)!.event, JSON.stringify(longEvents.at(-1)).slice(0, 300)).toBe('done');
    expect(otherEvents.at(-1)!.event, JSON.stringify(otherEvents.at(-1)).slice(0, 300)).toBe('done');
    expect(longEvents.filter((e) => e.event === 'step')).toHaveLength(150);
    expect(await loaded()).toEqual(['tiny-b']);
  });

  it('refuses a model larger than the whole budget with the reason', async () => {
    const tiny = await buildApp({
      modelsDir,
      serviceToken: TOKEN,
      executionProviders: ['cpu'],
      intraOpNumThreads: 1,
      queueMax: 4,
      modelMemoryBudget: Math.floor(footprint / 2),
    });
    try {
      const res = await tiny.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job('tiny-a') });
      expect(res.statusCode).toBe(503);
      expect(res.json().error).toMatchObject({ code: 'model_unavailable', message: expect.stringMatching(/MODEL_MEMORY_BUDGET/) });
      const row = (await tiny.inject({ method: 'GET', url: '/v1/models', headers: auth })).json().data.find((r: { id: string }) => r.id === 'tiny-a');
      expect(row.error).toMatch(/MODEL_MEMORY_BUDGET/);
    } finally {
      await tiny.close();
    }
  });
});
