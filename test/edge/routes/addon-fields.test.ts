/**
 * LoRAs, embeddings and a VAE override in the OpenAI-style routes and /v1/img2img: the extra body fields `loras`,
 * `embeddings`, `vae` (and `<lora:…>` prompt tags) reach the GPU job, are checked against the listing before any
 * work (400 naming the request's field), and a GPU service refusal naming a job field comes back naming the
 * request's. The listings show add-ons with the base model they fit.
 */
import { env, exports } from 'cloudflare:workers';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ErrorBody } from '@image-api/shared/errors';
import type { BackendModel } from '@image-api/shared/api/models';
import { novitaModel } from '../../../edge/src/routes/async-tasks';
import { seedApiKey } from '../helpers/api-keys';
import { installFakeGpuService, type FakeGpuService } from '../helpers/fake-gpu-service';
import { solidPng } from '../helpers/png';
import { encodeBase64 } from '../../../edge/src/lib/base64';

const KEY = 'sk-test-addon-fields';
const ORIGIN = 'https://edge.test';

function postJson(path: string, body: unknown): Promise<Response> {
  return exports.default.fetch(`${ORIGIN}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: JSON.stringify(body),
  });
}

function postForm(path: string, fields: Record<string, string | Uint8Array>): Promise<Response> {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    if (typeof value === 'string') form.append(name, value);
    else form.append(name, new File([value], `${name}.png`, { type: 'image/png' }));
  }
  return exports.default.fetch(`${ORIGIN}${path}`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` }, body: form });
}

async function expectError(response: Response, status: number, param: string, message?: RegExp): Promise<ErrorBody> {
  const body = (await response.json()) as ErrorBody;
  expect({ status: response.status, param: body.error.param }, JSON.stringify(body)).toEqual({ status, param });
  if (message) expect(body.error.message).toMatch(message);
  return body;
}

const GENERATE = { prompt: 'a red apple', size: '256x256', response_format: 'b64_json' };

describe('add-on fields in the OpenAI-style routes and /v1/img2img', () => {
  let gpu: FakeGpuService;
  beforeAll(async () => {
    await seedApiKey(env.API_KEYS, { key: KEY, name: 'addon-fields', tenant: 'tenant-a' });
  });
  beforeEach(() => {
    gpu = installFakeGpuService(env.GPU_SERVICE_URL, env.GPU_SERVICE_TOKEN);
  });
  afterEach(() => gpu.restore());

  it('generations: loras, embeddings and vae become the job\'s add-ons; the prompt keeps its tags for the GPU service', async () => {
    const response = await postJson('/v1/images/generations', {
      ...GENERATE,
      prompt: 'a red apple <lora:some-lora:0.5>',
      loras: [{ model_name: 'styles/ink', strength: 0.8 }, { model_name: 'styles/ink' }],
      embeddings: [{ model_name: 'easynegative' }],
      vae: 'vae-ft-mse',
    });
    expect(response.status, await response.clone().text()).toBe(200);
    expect(gpu.jobs).toHaveLength(1);
    expect(gpu.jobs[0]).toMatchObject({
      prompt: 'a red apple <lora:some-lora:0.5>',
      loras: [{ name: 'styles/ink', strength: 0.8 }, { name: 'styles/ink', strength: 1 }],
      embeddings: [{ name: 'easynegative' }],
      vae: 'vae-ft-mse',
    });
  });

  it('a request without add-ons sends none', async () => {
    expect((await postJson('/v1/images/generations', GENERATE)).status).toBe(200);
    expect(gpu.jobs[0]).toMatchObject({ loras: [], embeddings: [] });
    expect(gpu.jobs[0].vae).toBeUndefined();
  });

  it.each([
    ['an unknown LoRA', { loras: [{ model_name: 'styles/ink' }, { model_name: 'nope' }] }, 'loras.1.model_name', /No LoRA named "nope".*available: some-lora, styles\/ink.*GET \/v1\/models \(kind "lora"\)/],
    ['a checkpoint named as a LoRA', { loras: [{ model_name: 'tiny-analytic' }] }, 'loras.0.model_name', /No LoRA named "tiny-analytic"/],
    ['a LoRA the service cannot use, with why', { loras: [{ model_name: 'old-lora' }] }, 'loras.0.model_name', /"old-lora" cannot be used: pickle files are never loaded/],
    ['a strength above 4', { loras: [{ model_name: 'styles/ink', strength: 4.5 }] }, 'loras.0.strength', undefined],
    ['six LoRAs', { loras: Array.from({ length: 6 }, () => ({ model_name: 'styles/ink' })) }, 'loras', undefined],
    ['five LoRAs and a prompt tag', { loras: Array.from({ length: 5 }, () => ({ model_name: 'styles/ink' })), prompt: 'a <lora:some-lora>' }, 'loras', /At most 5 LoRAs per request: 6 given/],
    ['an unknown LoRA in a prompt tag', { prompt: 'an apple <lora:missing:0.6>' }, 'prompt', /No LoRA named "missing"/],
    ['a hypernetwork tag', { prompt: 'an apple <hypernet:x:1>' }, 'prompt', /hypernetworks are not supported/],
    ['an unknown embedding', { embeddings: [{ model_name: 'bad-hands' }] }, 'embeddings.0.model_name', /No textual-inversion embedding named "bad-hands"/],
    ['an unknown VAE', { vae: 'kl-f8-anime' }, 'vae', /No VAE named "kl-f8-anime".*available: vae-ft-mse/],
  ])('generations refuse %s with a 400 naming the field, before any job', async (_why, change, param, message) => {
    await expectError(await postJson('/v1/images/generations', { ...GENERATE, ...change }), 400, param, message);
    expect(gpu.jobs).toHaveLength(0);
  });

  it('a GPU service refusal naming a job field names the request field', async () => {
    gpu.behaviour = {
      kind: 'status',
      status: 400,
      body: { error: { code: 'invalid_request', message: 'LoRA "styles/ink" matches no layer of this model', param: 'loras[1].name', type: 'invalid_request_error' } },
    };
    await expectError(
      await postJson('/v1/images/generations', { ...GENERATE, loras: [{ model_name: 'some-lora' }, { model_name: 'styles/ink' }] }),
      400,
      'loras.1.model_name',
      /matches no layer/,
    );
    gpu.behaviour = { kind: 'status', status: 400, body: { error: { code: 'invalid_request', message: 'VAE "vae-ft-mse" takes 16-channel latents', param: 'vae', type: 'invalid_request_error' } } };
    await expectError(await postJson('/v1/img2img', { width: 256, height: 256, vae: 'vae-ft-mse' }), 400, 'vae', /16-channel/);
  });

  it('/v1/img2img takes the same fields', async () => {
    const response = await postJson('/v1/img2img', { width: 256, height: 256, loras: [{ model_name: 'styles/ink', strength: -0.5 }], vae: 'vae-ft-mse', response_format: 'b64_json' });
    expect(response.status, await response.clone().text()).toBe(200);
    expect(gpu.jobs[0]).toMatchObject({ loras: [{ name: 'styles/ink', strength: -0.5 }], vae: 'vae-ft-mse' });
    await expectError(await postJson('/v1/img2img', { width: 256, height: 256, embeddings: [{ model_name: 'nope' }] }), 400, 'embeddings.0.model_name');
  });

  it('edits take loras and embeddings as JSON text fields of the multipart form', async () => {
    const image = await solidPng(256, 256, [10, 20, 30]);
    const response = await postForm('/v1/images/edits', {
      prompt: 'make it blue',
      image,
      loras: JSON.stringify([{ model_name: 'styles/ink', strength: 0.7 }]),
      embeddings: JSON.stringify([{ model_name: 'easynegative' }]),
      vae: 'vae-ft-mse',
      response_format: 'b64_json',
    });
    expect(response.status, await response.clone().text()).toBe(200);
    expect(gpu.jobs[0]).toMatchObject({ mode: 'img2img', loras: [{ name: 'styles/ink', strength: 0.7 }], embeddings: [{ name: 'easynegative' }], vae: 'vae-ft-mse' });
    await expectError(await postForm('/v1/images/edits', { prompt: 'x', image, loras: 'styles/ink' }), 400, 'loras');
    // JSON bodies carry them as arrays.
    const json = await postJson('/v1/images/variations', { image: encodeBase64(image), loras: [{ model_name: 'nope' }] });
    await expectError(json, 400, 'loras.0.model_name', /No LoRA named "nope"/);
  });

  it('GET /v1/models lists add-ons with their kind, architecture and error', async () => {
    const response = await exports.default.fetch(`${ORIGIN}/v1/models`, { headers: { authorization: `Bearer ${KEY}` } });
    const { data } = (await response.json()) as { data: Array<Record<string, unknown>> };
    expect(data.find((m) => m.id === 'styles/ink')).toMatchObject({ kind: 'lora', architecture: 'Stable Diffusion 1.x', capabilities: [] });
    expect(data.find((m) => m.id === 'old-lora')).toMatchObject({ kind: 'lora', error: 'pickle files are never loaded' });
    expect(data.find((m) => m.id === 'easynegative')?.kind).toBe('textualinversion');
  });
});

describe('GET /v3/model base_model of add-ons', () => {
  const addon = (kind: BackendModel['kind'], architecture?: string): BackendModel => ({ id: 'x', kind, capabilities: [], native_size: [0, 0], max_pixels: 0, loaded: false, ...(architecture ? { architecture } : {}) });
  it.each([
    [addon('lora', 'Stable Diffusion 1.x'), 'SD 1.5'],
    [addon('textualinversion', 'Stable Diffusion XL'), 'SDXL'],
    [addon('vae', 'Stable Diffusion 1.x / Stable Diffusion 2.x / Stable Diffusion XL (4 latent channels)'), 'SD 1.5, SD 2.1, SDXL'],
    [addon('vae', 'FLUX.1 / Stable Diffusion 3.x (16 latent channels)'), 'FLUX.1, SD 3.5'],
    [addon('lora'), 'unknown'],
  ])('%#: %s', (model, label) => {
    expect(novitaModel(model).base_model).toBe(label);
  });
});
