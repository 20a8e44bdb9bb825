/**
 * Checkpoints in MODELS_DIR/checkpoints/ on the GPU service (buildApp + inject): every broken or unsupported
 * file is listed with the reason and a job naming it is a 503 model_unavailable with that reason; ids are
 * relative paths (never a path escape); a model larger than MODEL_MEMORY_BUDGET is refused; a conversion that
 * fails leaves nothing in the cache.
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../gpu-service/src/app';
import { writeSafetensors } from '../../gpu-service/src/weights/safetensors-writer';
import { syntheticTensors } from '../../scripts/checkpoints/synthetic-checkpoint';
import { hasFixture } from '../helpers/checkpoint-fixtures';
import { addFixtureCheckpoint, makeModelsDir } from '../helpers/checkpoint-models-dir';

const available = hasFixture('checkpoints') && hasFixture('clip-tokenizer');
const TOKEN = 'checkpoint-models-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
let modelsDir: string;
let app: FastifyInstance;

/** A tiny SD 1.x-shaped checkpoint generated from an architecture (not a fixture), with `drop` keys left out. */
async function writeGenerated(file: string, drop: (key: string) => boolean = () => false): Promise<void> {
  const tensors = syntheticTensors({
    unet: { inChannels: 4, outChannels: 4, modelChannels: 32, channelMult: [1, 2], numResBlocks: 1, attentionLevels: [0], transformerDepth: 1, contextDim: 32, useLinearInTransformer: false },
    vae: { ch: 32, chMult: [1, 1], numResBlocks: 1, zChannels: 4, quantConv: true },
    textEncoders: [{ prefix: 'cond_stage_model.transformer.', arch: { layout: 'transformers', hidden: 32, layers: 2, mlp: 64, vocab: 49408, positions: 77 } }],
    dtype: 'F16',
    seed: 7,
  }).filter((t) => !drop(t.key));
  await mkdir(path.dirname(file), { recursive: true });
  await writeSafetensors(file, tensors);
  // What the tensors cannot tell: 32-channel attention in 4 heads, 8 GroupNorm groups.
  await writeFile(file.replace(/\.safetensors$/, '.json'), JSON.stringify({ unet: { attention_head_dim: 4, norm_num_groups: 8 }, vae: { norm_num_groups: 8 }, text_encoder: { num_attention_heads: 2 } }));
}

const job = (model: string) => ({ id: `c-${Math.random().toString(36).slice(2)}`, model, prompt: 'a fox', width: 64, height: 64, seed: 1, steps: 1, sampler: 'euler', scheduler: 'normal' });

async function listing(): Promise<Array<Record<string, unknown>>> {
  const res = await app.inject({ method: 'GET', url: '/v1/models', headers: auth });
  return (res.json() as { data: Array<Record<string, unknown>> }).data;
}

beforeAll(async () => {
  if (!available) return;
  modelsDir = await makeModelsDir('gpu-checkpoints-');
  const ck = (rel: string) => path.join(modelsDir, 'checkpoints', rel);
  await writeGenerated(ck('generated/ok.safetensors'));
  await writeGenerated(ck('generated/no-out-conv.safetensors'), (k) => k === 'model.diffusion_model.out.2.weight');
  await writeGenerated(ck('generated/no-vae.safetensors'), (k) => k.startsWith('first_stage_model.'));
  await addFixtureCheckpoint(modelsDir, 'checkpoints/sd15-tiny', 'lora/tiny-lora.safetensors', 'misplaced-lora.safetensors', { sidecar: false });
  await writeSafetensors(ck('unknown.safetensors'), [{ key: 'transformer.h.0.attn.c_attn.weight', dtype: 'F32', shape: [4, 4], values: () => new Float32Array(16) }]);
  await writeFile(ck('weights.pt'), Buffer.from('PK\u0003\u0004'));
  await mkdir(ck('diffusers-bin/unet'), { recursive: true });
  await writeFile(ck('diffusers-bin/model_index.json'), JSON.stringify({ _class_name: 'StableDiffusionPipeline', unet: ['diffusers', 'UNet2DConditionModel'] }));
  await writeFile(ck('diffusers-bin/unet/diffusion_pytorch_model.bin'), Buffer.from('PK'));
  await writeGenerated(ck('generated/bad-sidecar.safetensors'));
  await writeFile(ck('generated/bad-sidecar.json'), '{ nope');
  app = await buildApp({ modelsDir, serviceToken: TOKEN, executionProviders: ['cpu'], intraOpNumThreads: 1, queueMax: 4, logger: false, modelWarmUp: false });
}, 60_000);
afterAll(async () => {
  await app?.close();
  if (modelsDir) await rm(modelsDir, { recursive: true, force: true });
});

describe.skipIf(!available)('checkpoint files on the GPU service', () => {
  it('lists each broken or unsupported file with the reason, and a job naming it is a 503 with that reason', async () => {
    const rows = await listing();
    const byId = new Map(rows.map((r) => [r.id as string, r]));
    expect(byId.get('generated/ok.safetensors')).toMatchObject({ kind: 'checkpoint', architecture: 'Stable Diffusion 1.x', stored_dtype: 'F16', cache: 'missing' });
    expect(byId.get('generated/ok.safetensors')?.error).toBeUndefined();
    const reasons: Record<string, RegExp> = {
      'generated/no-out-conv.safetensors': /has no tensor "out\.2\.weight", which the detected architecture needs/,
      'generated/no-vae.safetensors': /no VAE|holds only a UNet/,
      'misplaced-lora.safetensors': /this is a LoRA .* put it in MODELS_DIR\/loras/,
      'unknown.safetensors': /no known architecture/,
      'weights.pt': /pickle files are never loaded/,
      'diffusers-bin': /pickle files are never loaded/,
      'generated/bad-sidecar.safetensors': /bad-sidecar\.json: not valid JSON/,
    };
    for (const [id, reason] of Object.entries(reasons)) {
      expect(String(byId.get(id)?.error), id).toMatch(reason);
      expect(byId.get(id)?.capabilities, id).toEqual([]);
      const res = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job(id) });
      expect(res.statusCode, id).toBe(503);
      expect(res.json().error.code, id).toBe('model_unavailable');
      expect(res.json().error.message, id).toMatch(reason);
    }
    // Sidecars are not models; nothing outside MODELS_DIR/checkpoints is reachable by id.
    expect([...byId.keys()].some((id) => id.endsWith('.json'))).toBe(false);
    for (const id of ['../checkpoints/generated/ok.safetensors', '/etc/passwd', 'checkpoints/generated/ok.safetensors']) {
      const res = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job(id) });
      expect(res.statusCode, id).toBe(404);
    }
  });

  it('a generated checkpoint of another configuration converts, runs, and is cached afterwards', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job('generated/ok.safetensors') });
    expect(res.statusCode, res.body).toBe(200);
    const images = res.json().images as Array<{ b64: string }>;
    expect(images).toHaveLength(1);
    const row = (await listing()).find((r) => r.id === 'generated/ok.safetensors');
    expect(row).toMatchObject({ loaded: true, cache: 'cached' });
    const metrics = await app.inject({ method: 'GET', url: '/metrics', headers: auth });
    expect(metrics.body).toMatch(/gpu_service_model_load_seconds_count\{source="conversion"\} 1/);
    // The cache holds exactly one complete entry and no temporary folder.
    const entries = await readdir(path.join(modelsDir, '.cache'));
    expect(entries.filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    expect(entries.filter((n) => /^[0-9a-f]{32}$/.test(n))).toHaveLength(1);
  });

  it('a checkpoint larger than MODEL_MEMORY_BUDGET is refused with the reason', async () => {
    const small = await buildApp({ modelsDir, serviceToken: TOKEN, executionProviders: ['cpu'], queueMax: 4, intraOpNumThreads: 1, logger: false, modelWarmUp: false, modelMemoryBudget: 1_000_000 });
    try {
      const res = await small.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job('generated/ok.safetensors') });
      expect(res.statusCode).toBe(503);
      expect(res.json().error.message).toMatch(/more than MODEL_MEMORY_BUDGET \(1000000\)/);
    } finally {
      await small.close();
    }
  });
});
