import { env } from 'cloudflare:workers';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Img2ImgResponse } from '@image-api/shared/api/img2img';
import type { BackendModel } from '@image-api/shared/api/models';
import { buildApp } from '../../../edge/src/app';
import { seedApiKey } from '../helpers/api-keys';
import { installFakeGpuService, type FakeGpuService } from '../helpers/fake-gpu-service';

const KEY = 'sk-test-model-defaults';
const SCHNELL: BackendModel = {
  id: 'flux/flux1-schnell-Q4_0.gguf',
  kind: 'checkpoint',
  capabilities: ['txt2img', 'img2img', 'inpaint'],
  native_size: [512, 512],
  max_pixels: 1024 * 1024,
  loaded: false,
  architecture: 'FLUX.1-schnell',
  prediction_type: 'flow',
};

/** One request through a fresh app (fresh model catalog, so the listing below is read). */
async function post(path: string, body: unknown): Promise<Response> {
  return buildApp().request(path, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` }, body: JSON.stringify(body) }, env);
}

describe('per-model defaults through the routes (the listing decides)', () => {
  let gpu: FakeGpuService;
  beforeAll(async () => {
    await seedApiKey(env.API_KEYS, { key: KEY, name: 'defaults-test', tenant: 'tenant-d' });
  });
  beforeEach(() => {
    gpu = installFakeGpuService(env.GPU_SERVICE_URL, env.GPU_SERVICE_TOKEN);
    gpu.models.push(SCHNELL);
  });
  afterEach(() => gpu.restore());

  it('OpenAI generations: FLUX.1-schnell without sampling fields runs 4 steps, cfg 1, euler + simple', async () => {
    const response = await post('/v1/images/generations', { prompt: 'a fox', model: SCHNELL.id, response_format: 'b64_json' });
    expect(response.status, await response.clone().text()).toBe(200);
    expect(gpu.jobs[0]).toMatchObject({ model: SCHNELL.id, steps: 4, cfg_scale: 1, sampler: 'euler', scheduler: 'simple' });
    const body = (await response.json()) as { usage: { steps: number } };
    expect(body.usage.steps).toBe(4);
  });

  it('OpenAI generations: the default model (tiny-analytic, no row) keeps the GPUStack defaults', async () => {
    const response = await post('/v1/images/generations', { prompt: 'a fox', response_format: 'b64_json' });
    expect(response.status).toBe(200);
    expect(gpu.jobs[0]).toMatchObject({ model: 'tiny-analytic', steps: 10, cfg_scale: 4.5, sampler: 'euler_ancestral' });
  });

  it('/v1/img2img: FLUX.1-schnell defaults, echoed in parameters with ComfyUI names', async () => {
    const response = await post('/v1/img2img', { model: SCHNELL.id, response_format: 'b64_json' });
    expect(response.status, await response.clone().text()).toBe(200);
    expect(gpu.jobs[0]).toMatchObject({ steps: 4, cfg_scale: 1, sampler: 'euler', scheduler: 'simple' });
    const body = (await response.json()) as Img2ImgResponse;
    expect(body.parameters).toMatchObject({ steps: 4, cfg: 1, sampler_name: 'euler', scheduler: 'simple' });
  });

  it('/v1/img2img: a request value wins over the model default', async () => {
    const response = await post('/v1/img2img', { model: SCHNELL.id, steps: 6, cfg: 2, sampler_name: 'heun', response_format: 'b64_json' });
    expect(response.status).toBe(200);
    expect(gpu.jobs[0]).toMatchObject({ steps: 6, cfg_scale: 2, sampler: 'heun', scheduler: 'simple' });
  });
});
