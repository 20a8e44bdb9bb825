import { env, exports } from 'cloudflare:workers';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../../../edge/src/app';
import type { PublicModelList } from '@image-api/shared/api/models';
import type { ErrorBody } from '@image-api/shared/errors';
import { seedApiKey } from '../helpers/api-keys';
import { FAKE_HF_DOWNLOADS, installFakeGpuService, type FakeGpuService } from '../helpers/fake-gpu-service';

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

  it("says what hf.co references may download: the GPU service's rules and whether this key may fetch any repository", async () => {
    const body = (await (await listModels()).json()) as PublicModelList;
    expect(body.hf_downloads).toEqual({ ...FAKE_HF_DOWNLOADS, any_repository: false });
    const admin = 'sk-test-models-admin';
    await seedApiKey(env.API_KEYS, { key: admin, name: 'models-admin', scopes: ['*', 'models:download'] });
    const response = await exports.default.fetch('https://edge.test/v1/models', { headers: { authorization: `Bearer ${admin}` } });
    expect(((await response.json()) as PublicModelList).hf_downloads).toEqual({ ...FAKE_HF_DOWNLOADS, any_repository: true });
  });

  it('lists post-processing models with their kind (and a face-restoration model its role), on /v1/models and /v3/model', async () => {
    gpu.models.push(
      { id: 'rmbg-1.4', kind: 'matting', capabilities: [], native_size: [0, 0], max_pixels: 0, loaded: false },
      { id: 'R-ESRGAN 4x+', kind: 'upscaler', capabilities: [], native_size: [0, 0], max_pixels: 0, loaded: true },
      { id: 'retinaface', kind: 'facerestore', role: 'detector', capabilities: [], native_size: [0, 0], max_pixels: 0, loaded: false },
      { id: 'GFPGANv1.4', kind: 'facerestore', role: 'restorer', capabilities: [], native_size: [0, 0], max_pixels: 0, loaded: false, error: 'its sidecar: bad' },
    );
    // A fresh app: its model-list cache is empty.
    const app = buildApp();
    const headers = { authorization: `Bearer ${KEY}` };
    const body = (await (await app.request('/v1/models', { headers }, env)).json()) as PublicModelList;
    const byId = Object.fromEntries(body.data.map((model) => [model.id, model]));
    expect(byId['rmbg-1.4']).toEqual({ id: 'rmbg-1.4', object: 'model', created: 0, owned_by: 'image-api', kind: 'matting', capabilities: [], native_size: [0, 0], max_pixels: 0 });
    expect(byId['R-ESRGAN 4x+'].kind).toBe('upscaler');
    expect(byId['retinaface']).toMatchObject({ kind: 'facerestore', role: 'detector' });
    expect(byId['GFPGANv1.4']).toMatchObject({ kind: 'facerestore', role: 'restorer', error: 'its sidecar: bad' });
    const v3 = (await (await app.request('/v3/model?filter.types=matting,facerestore', { headers }, env)).json()) as { models: Array<Record<string, unknown>> };
    expect(v3.models.map((m) => [m.sd_name, m.type, m.status, m.role])).toEqual([
      ['rmbg-1.4', 'matting', 1, undefined],
      ['retinaface', 'facerestore', 1, 'detector'],
      ['GFPGANv1.4', 'facerestore', 0, 'restorer'],
    ]);
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
