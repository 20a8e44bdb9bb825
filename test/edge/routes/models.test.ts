import { env, exports } from 'cloudflare:workers';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../../../edge/src/app';
import type { PublicModelList } from '@image-api/shared/api/models';
import type { ErrorBody } from '@image-api/shared/errors';
import { seedApiKey } from '../helpers/api-keys';
import { installFakeGpuService, type FakeGpuService } from '../helpers/fake-gpu-service';

const KEY = 'sk-test-models';

function listModels(): Promise<Response> {
  return exports.default.fetch('https://edge.test/v1/models', { headers: { authorization: `Bearer ${KEY}` } });
}

describe('GET /v1/models', () => {
  let gpu: FakeGpuService;
  beforeAll(async () => {
    await seedApiKey(env.API_KEYS, { key: KEY });
  });
  beforeEach(() => {
    gpu = installFakeGpuService(env.GPU_SERVICE_URL, env.GPU_SERVICE_TOKEN);
  });
  afterEach(() => gpu.restore());

  it("lists the GPU service's models in OpenAI's list shape with our extensions", async () => {
    const response = await listModels();
    expect(response.status).toBe(200);
    const body = (await response.json()) as PublicModelList;
    expect(body.object).toBe('list');
    expect(body.data[0]).toEqual({
      id: 'tiny-analytic',
      object: 'model',
      created: 0,
      owned_by: 'image-api',
      kind: 'checkpoint',
      capabilities: ['txt2img', 'img2img', 'inpaint'],
      native_size: [256, 256],
      max_pixels: 262144,
    });
    expect(body.data.map((model) => model.id)).toEqual(['tiny-analytic', 'some-lora', 'styles/ink', 'old-lora', 'easynegative', 'vae-ft-mse', 'broken-model']);
  });

  it('answers 502 backend_unavailable when the GPU service is down', async () => {
    gpu.restore();
    const spy = vi.spyOn(globalThis, 'fetch').mockRejectedValue(new TypeError('connect ECONNREFUSED'));
    try {
      // A fresh app: its model-list cache is empty, so the list must come from the (dead) service.
      const response = await buildApp().request('/v1/models', { headers: { authorization: `Bearer ${KEY}` } }, env);
      expect(response.status).toBe(502);
      expect(((await response.json()) as ErrorBody).error.code).toBe('backend_unavailable');
    } finally {
      spy.mockRestore();
    }
  });
});
