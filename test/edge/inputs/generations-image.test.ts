import { env, exports } from 'cloudflare:workers';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { encodeBase64 } from '../../../edge/src/lib/base64';
import type { ImagesResponse } from '@image-api/shared/api/openai-images';
import type { ErrorBody } from '@image-api/shared/errors';
import { seedApiKey } from '../helpers/api-keys';
import { installFakeGpuService, type FakeGpuService } from '../helpers/fake-gpu-service';
import { solidPng } from '../helpers/png';
import { addFakeImageHost } from './helpers/fake-image-host';
import { jpegHeader } from './helpers/png-encode';

const KEY = 'sk-test-gen-image';
const ORIGIN = 'https://edge.test';

function post(body: unknown): Promise<Response> {
  return exports.default.fetch(`${ORIGIN}/v1/images/generations`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

async function expectError(response: Response, status: number, param: string | null, code: string): Promise<void> {
  const body = (await response.json()) as ErrorBody;
  expect({ status: response.status, param: body.error.param, code: body.error.code }).toEqual({ status, param, code });
}

let source: Uint8Array;

describe('POST /v1/images/generations with `image` → img2img', () => {
  let gpu: FakeGpuService;
  beforeAll(async () => {
    await seedApiKey(env.API_KEYS, { key: KEY, name: 'gen-image', tenant: 'tenant-g' });
    source = await solidPng(160, 96, [0, 255, 0]);
  });
  beforeEach(() => {
    gpu = installFakeGpuService(env.GPU_SERVICE_URL, env.GPU_SERVICE_TOKEN);
  });
  afterEach(() => gpu.restore());

  it('base64 image: img2img job with strength 0.75 and the image size; the input is stored with the task', async () => {
    const response = await post({ prompt: 'make it red', image: encodeBase64(source), response_format: 'b64_json', seed: 5 });
    expect(response.status).toBe(200);
    const taskId = response.headers.get('x-task-id')!;
    expect(gpu.jobs[0]).toMatchObject({
      id: taskId,
      mode: 'img2img',
      init_image: encodeBase64(source),
      strength: 0.75,
      strength_schedule: 'scaled',
      width: 160,
      height: 96,
      seed: 5,
    });
    const body = (await response.json()) as ImagesResponse;
    expect(body.receipt?.mode).toBe('img2img');
    const keys = (await env.IMAGES.list()).objects.map((o) => o.key).filter((k) => k.includes(`/${taskId}/`));
    expect(keys.map((k) => k.split('/').pop()).sort()).toEqual(['0.png', 'input-0.png']);
  });

  it('an explicit size and strength win; an array of one image is that image, a second one is a 400 naming it', async () => {
    const other = await solidPng(64, 64, [1, 1, 1]);
    const response = await post({
      prompt: 'x',
      image: [`data:image/png;base64,${encodeBase64(source)}`],
      size: '128x128',
      strength: 0.35,
      response_format: 'b64_json',
    });
    expect(response.status).toBe(200);
    expect(gpu.jobs[0]).toMatchObject({ width: 128, height: 128, strength: 0.35, init_image: encodeBase64(source) });
    const two = await post({ prompt: 'x', image: [encodeBase64(source), encodeBase64(other)] });
    expect(two.status).toBe(400);
    expect(((await two.json()) as { error: { param: string } }).error.param).toBe('image[1]');
    expect(gpu.jobs).toHaveLength(1);
  });

  it('an https image URL is fetched; a big source is fitted to the model max pixels', async () => {
    addFakeImageHost({ 'https://images.example.com/big.jpg': () => new Response(jpegHeader(2000, 1000)) });
    const response = await post({ prompt: 'x', image: 'https://images.example.com/big.jpg', response_format: 'b64_json' });
    expect(response.status).toBe(200);
    // 2000×1000 scaled by √(262144/2e6) = 0.362 → 724×362 → 720×360.
    expect(gpu.jobs[0]).toMatchObject({ width: 720, height: 360 });
  });

  describe('refusals, before any GPU work', () => {
    afterEach(() => expect(gpu.jobs).toHaveLength(0));

    it('bytes that are not an image → 415', async () => {
      await expectError(await post({ prompt: 'x', image: 'aGVsbG8=' }), 415, 'image', 'unsupported_media_type');
    });

    it('a loopback image URL', async () => {
      await expectError(await post({ prompt: 'x', image: 'https://127.0.0.1/a.png' }), 400, 'image', 'invalid_image_url');
    });

    it('a link-local image URL over http', async () => {
      await expectError(await post({ prompt: 'x', image: 'http://169.254.169.254/latest/meta-data/' }), 400, 'image', 'invalid_image_url');
    });

    it('a JSON body over 20 MiB → 413', async () => {
      await expectError(await post({ prompt: 'x', image: 'A'.repeat(21 * 1024 * 1024) }), 413, null, 'payload_too_large');
    });
  });
});
