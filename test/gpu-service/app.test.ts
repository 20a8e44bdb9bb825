/**
 * The GPU service on the real analytic tiny model, through app.inject(): what a caller of POST /v1/jobs
 * would notice — colours, reproducibility, per-image seeds, errors and the service token.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../gpu-service/src/app';
import { readPngText } from '../../gpu-service/src/images/encode-image';
import { tinyModelsDir } from '../helpers/tiny-model';
import { dominant, meanColour } from '../helpers/image-stats';

const TOKEN = 'test-service-token-0123456789';
let app: FastifyInstance;

beforeAll(async () => {
  app = await buildApp({ modelsDir: await tinyModelsDir(), serviceToken: TOKEN, executionProviders: ['cpu'], intraOpNumThreads: 1, queueMax: 8 });
});
afterAll(async () => app?.close());

const job = (over: Record<string, unknown> = {}) => ({
  id: `job-${Math.random().toString(36).slice(2)}`,
  model: 'tiny-analytic',
  prompt: 'a red apple',
  width: 64,
  height: 64,
  seed: 42,
  steps: 8,
  sampler: 'euler',
  scheduler: 'normal',
  cfg_scale: 5,
  ...over,
});

async function post(body: unknown, token: string | null = TOKEN) {
  return app.inject({
    method: 'POST',
    url: '/v1/jobs',
    headers: token ? { authorization: `Bearer ${token}` } : {},
    payload: body as object,
  });
}

describe('GPU service POST /v1/jobs on the tiny model', () => {
  it.each([
    ['a red apple', 'red'],
    ['a blue sky', 'blue'],
    ['green grass', 'green'],
  ] as const)('"%s" comes out %s', async (prompt, colour) => {
    const res = await post(job({ prompt }));
    expect(res.statusCode, res.body).toBe(200);
    const img = Buffer.from(res.json().images[0].b64, 'base64');
    const mean = await meanColour(img);
    expect(mean.width).toBe(64);
    expect(dominant(mean)).toBe(colour);
  });

  it('the same seed gives byte-identical PNGs, another seed a different image', async () => {
    const a = (await post(job())).json().images[0].b64;
    const b = (await post(job())).json().images[0].b64;
    const c = (await post(job({ seed: 43 }))).json().images[0].b64;
    expect(a).toBe(b);
    expect(c).not.toBe(a);
  });

  it('batch_size 2 gives seeds s and s+1, and image 1 equals the image made alone with seed s+1', async () => {
    const batch = (await post(job({ batch_size: 2, seed: 7 }))).json();
    expect(batch.images.map((i: { seed: number }) => i.seed)).toEqual([7, 8]);
    const alone = (await post(job({ seed: 8 }))).json();
    // The receipt differs (batch index), so compare pixels, not file bytes.
    const px = async (b64: string) => (await import('sharp')).default(Buffer.from(b64, 'base64')).raw().toBuffer();
    expect((await px(batch.images[1].b64)).equals(await px(alone.images[0].b64))).toBe(true);
  });

  it('embeds the reproducibility receipt in the PNG and the JSON', async () => {
    const res = (await post(job())).json();
    const text = readPngText(Buffer.from(res.images[0].b64, 'base64'));
    const receipt = JSON.parse(text.parameters);
    expect(receipt).toMatchObject({ model: 'tiny-analytic', seed: 42, steps: 8, sampler: 'euler', scheduler: 'normal', cfg_scale: 5, rng: 'cpu' });
    expect(receipt.model_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(res.params.onnxruntime_version).toMatch(/^\d+\.\d+/);
  });

  it('refuses a missing or wrong service token with 401', async () => {
    expect((await post(job(), null)).statusCode).toBe(401);
    expect((await post(job(), 'wrong-token-wrong-token')).statusCode).toBe(401);
    const models = await app.inject({ method: 'GET', url: '/v1/models' });
    expect(models.statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });

  it('answers 404 model_not_found for an unknown model and 400 naming the field for a bad job', async () => {
    const missing = await post(job({ model: 'no-such-model' }));
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error).toMatchObject({ code: 'model_not_found', param: 'model' });
    const bad = await post(job({ width: 65 }));
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.param).toBe('width');
  });

  it('lists the model with its native size', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/models', headers: { authorization: `Bearer ${TOKEN}` } });
    const row = res.json().data.find((m: { id: string }) => m.id === 'tiny-analytic');
    expect(row).toMatchObject({ kind: 'checkpoint' });
    expect(row.native_size[0]).toBeGreaterThan(0);
  });
});
