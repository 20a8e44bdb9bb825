/**
 * SDXL jobs on the GPU service (buildApp + inject) with the checkpoints-xl tiny base and refiner in MODELS_DIR: a
 * base job runs and is listed as SDXL; refiner_switch_at uses the job's refiner_model or the service's
 * SDXL_REFINER_MODEL, names the refiner in the receipt, and changes the image; a refiner that is not served, or
 * one that is not SDXL, or no refiner at all, is a 400 naming refiner_model.
 */
import { rm } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../gpu-service/src/app';
import { hasFixture } from '../helpers/checkpoint-fixtures';
import { addFixtureCheckpoint, addXlFixtureCheckpoint, makeModelsDir } from '../helpers/checkpoint-models-dir';

const available = hasFixture('checkpoints-xl') && hasFixture('checkpoints') && hasFixture('clip-tokenizer');
const TOKEN = 'sdxl-jobs-token-0123456789abcdef';
const auth = { authorization: `Bearer ${TOKEN}` };
const BASE = 'sdxl/base.safetensors';
const REFINER = 'sdxl/refiner.safetensors';
const SD15 = 'sd1.5/tiny.safetensors';
let modelsDir: string;
let app: FastifyInstance;
let bare: FastifyInstance;

const job = (extra: Record<string, unknown> = {}) => ({
  id: `x-${Math.random().toString(36).slice(2)}`,
  model: BASE,
  prompt: 'a lighthouse at dusk',
  width: 64,
  height: 64,
  seed: 3,
  steps: 4,
  sampler: 'euler',
  scheduler: 'karras',
  cfg_scale: 5,
  ...extra,
});

beforeAll(async () => {
  if (!available) return;
  modelsDir = await makeModelsDir('gpu-sdxl-');
  await addXlFixtureCheckpoint(modelsDir, 'sdxl-base', BASE);
  await addXlFixtureCheckpoint(modelsDir, 'sdxl-refiner', REFINER);
  await addFixtureCheckpoint(modelsDir, 'checkpoints/sd15-tiny', 'sd15-tiny.safetensors', SD15);
  const opts = { modelsDir, serviceToken: TOKEN, executionProviders: ['cpu' as const], intraOpNumThreads: 1, queueMax: 4, logger: false, modelWarmUp: false };
  app = await buildApp({ ...opts, sdxlRefinerModel: REFINER });
  bare = await buildApp(opts);
}, 120_000);
afterAll(async () => {
  await app?.close();
  await bare?.close();
  if (modelsDir) await rm(modelsDir, { recursive: true, force: true });
});

describe.skipIf(!available)('SDXL jobs on the GPU service', () => {
  it('lists base and refiner by architecture; a base job runs; refiner_switch_at takes SDXL_REFINER_MODEL or refiner_model and is in the receipt', async () => {
    const rows = (await app.inject({ method: 'GET', url: '/v1/models', headers: auth })).json().data as Array<Record<string, unknown>>;
    expect(rows.find((r) => r.id === BASE)).toMatchObject({ architecture: 'Stable Diffusion XL' });
    expect(rows.find((r) => r.id === REFINER)).toMatchObject({ architecture: 'Stable Diffusion XL refiner' });

    const plain = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job() });
    expect(plain.statusCode, plain.body).toBe(200);
    const byDefault = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job({ refiner_switch_at: 0.5 }) });
    expect(byDefault.statusCode, byDefault.body).toBe(200);
    expect(byDefault.json().params).toMatchObject({ refiner_model: REFINER, refiner_switch_at: 0.5, refiner_model_hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(byDefault.json().images[0].b64).not.toBe(plain.json().images[0].b64);
    const named = await bare.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job({ refiner_switch_at: 0.5, refiner_model: REFINER }) });
    expect(named.statusCode, named.body).toBe(200);
    expect(named.json().images[0].b64).toBe(byDefault.json().images[0].b64);
    expect(plain.json().params.refiner_model).toBeUndefined();
  });

  it('no refiner configured, an unknown one, a non-SDXL one, or a non-SDXL base: 400 naming refiner_model', async () => {
    const cases: Array<[FastifyInstance, Record<string, unknown>, RegExp]> = [
      [bare, { refiner_switch_at: 0.5 }, /SDXL_REFINER_MODEL/],
      [app, { refiner_switch_at: 0.5, refiner_model: 'sdxl/missing.safetensors' }, /missing\.safetensors/],
      [app, { refiner_switch_at: 0.5, refiner_model: SD15 }, /is not an SDXL refiner/],
      [app, { model: SD15, refiner_switch_at: 0.5 }, /is not an SDXL model/],
    ];
    for (const [server, extra, message] of cases) {
      const res = await server.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job(extra) });
      expect(res.statusCode, JSON.stringify(extra)).toBe(400);
      expect(res.json().error, JSON.stringify(extra)).toMatchObject({ param: 'refiner_model', message: expect.stringMatching(message) });
    }
  });
});
