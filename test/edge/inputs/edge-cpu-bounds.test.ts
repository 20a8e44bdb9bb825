import { env, exports } from 'cloudflare:workers';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { newApiKeyRecord } from '@image-api/shared/api/api-key';
import type { ErrorBody } from '@image-api/shared/errors';
import { inspectPngMask, MASK_SCAN_MAX_BYTES } from '../../../edge/src/inputs/png-mask';
import { encodeBase64 } from '../../../edge/src/lib/base64';
import { installFakeGpuStream, type FakeGpuStream } from '../async/fake-gpu-stream';
import { installFakeGpuService, type FakeGpuService } from '../helpers/fake-gpu-service';
import { solidPng } from '../helpers/png';
import { alphaMaskPng, encodePng, whiteMaskPng } from './helpers/png-encode';

const ORIGIN = 'https://edge.test';
/** 1024² RGBA: 4 MiB of pixel data, twice the edge's scan budget. */
const SIDE = 1024;

/** Issue 10 item 5: the mask's pixel check is bounded (MASK_SCAN_MAX_BYTES) and runs only after the rate limiter. */
describe('the mask pixel scan reads at most MASK_SCAN_MAX_BYTES of pixel data', () => {
  it('the budget is below a 1024² RGBA mask', () => {
    expect(SIDE * SIDE * 4).toBeGreaterThan(MASK_SCAN_MAX_BYTES);
  });

  it('a mark within the budget answers covers; marks only past it, or none, are left to the GPU service (unchecked)', async () => {
    expect(await inspectPngMask(await alphaMaskPng(SIDE, SIDE, (x, y) => y === 3 && x === 900), 'alpha')).toBe('covers');
    expect(await inspectPngMask(await alphaMaskPng(SIDE, SIDE, (x, y) => y === SIDE - 1 && x === 5), 'alpha')).toBe('unchecked');
    expect(await inspectPngMask(await alphaMaskPng(SIDE, SIDE, () => false), 'alpha')).toBe('unchecked');
    // 2048² grey is 4 MiB too.
    expect(await inspectPngMask(await whiteMaskPng(2 * SIDE, 2 * SIDE, () => false), 'white')).toBe('unchecked');
  });

  it('nothing past the budget is read: a mask whose pixel data stops after the budget is unchecked, not a decode error', async () => {
    // 600 rows of data (2.4 MiB) under an IHDR that declares 1024 rows.
    const rows = 600;
    const png = await encodePng({ width: SIDE, height: rows, colorType: 6, bitDepth: 8, pixel: () => [0, 0, 0, 255] });
    new DataView(png.buffer, png.byteOffset).setUint32(20, SIDE); // IHDR height (signature 8 + length 4 + type 4 + width 4)
    expect(rows * SIDE * 4).toBeGreaterThan(MASK_SCAN_MAX_BYTES);
    expect(await inspectPngMask(png, 'alpha')).toBe('unchecked');
  });
});

describe('/v1/images/edits: the mask scan runs after rate-limit admission', () => {
  const KEY = 'sk-cpu-edits';
  let gpu: FakeGpuService;
  beforeAll(async () => {
    const record = await newApiKeyRecord(KEY, { name: 'cpu-edits', tenant: 'tenant-cpu', limits: { rpm: 1 } });
    await env.API_KEYS.put(record.key_hash, JSON.stringify(record));
  });
  beforeEach(() => {
    gpu = installFakeGpuService(env.GPU_SERVICE_URL, env.GPU_SERVICE_TOKEN);
  });
  afterEach(() => gpu.restore());

  const edit = async (image: Uint8Array, mask: Uint8Array, key = KEY) => {
    const form = new FormData();
    form.append('image', new File([image], 'image.png', { type: 'image/png' }));
    form.append('mask', new File([mask], 'mask.png', { type: 'image/png' }));
    form.append('prompt', 'x');
    form.append('response_format', 'b64_json');
    return exports.default.fetch(`${ORIGIN}/v1/images/edits`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: form });
  };

  it('an empty mask is a 400 that counts against the request rate: the next request is a 429', async () => {
    const image = await solidPng(128, 96, [0, 0, 255]);
    const opaque = await alphaMaskPng(128, 96, () => false);
    const first = await edit(image, opaque);
    expect(first.status).toBe(400);
    expect(((await first.json()) as ErrorBody).error).toMatchObject({ code: 'invalid_mask', param: 'mask' });
    const second = await edit(image, opaque);
    expect(second.status).toBe(429);
    expect(((await second.json()) as ErrorBody).error.code).toBe('rate_limit_exceeded');
    expect(gpu.jobs).toHaveLength(0);
  });

  it('a mask larger than the scan budget with no mark in it reaches the GPU service, which decodes it anyway', async () => {
    const OPEN_KEY = 'sk-cpu-edits-open';
    const record = await newApiKeyRecord(OPEN_KEY, { name: 'cpu-open', tenant: 'tenant-cpu' });
    await env.API_KEYS.put(record.key_hash, JSON.stringify(record));
    const image = await solidPng(SIDE, SIDE, [0, 0, 255]);
    const mask = await alphaMaskPng(SIDE, SIDE, () => false);
    const response = await edit(image, mask, OPEN_KEY);
    expect(response.status).toBe(200);
    expect(gpu.jobs).toHaveLength(1);
    expect(gpu.jobs[0].mask).toBe(encodeBase64(mask));
  });
});

describe('/v3/async/inpainting: the mask scan runs after rate-limit admission', () => {
  const KEY = 'sk-cpu-async';
  let gpu: FakeGpuStream;
  beforeAll(async () => {
    const record = await newApiKeyRecord(KEY, { name: 'cpu-async', tenant: 'tenant-cpu-a', limits: { rpm: 1 } });
    await env.API_KEYS.put(record.key_hash, JSON.stringify(record));
  });
  beforeEach(() => {
    gpu = installFakeGpuStream(env.GPU_SERVICE_URL, env.GPU_SERVICE_TOKEN);
  });
  afterEach(() => gpu.restore());

  it('an empty mask is a 400 naming request.mask_image_base64 that counts against the request rate', async () => {
    const image = encodeBase64(await solidPng(256, 256, [10, 20, 30]));
    const black = encodeBase64(await solidPng(256, 256, [0, 0, 0]));
    const submit = () =>
      exports.default.fetch(`${ORIGIN}/v3/async/inpainting`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          extra: {},
          request: { model_name: 'tiny-analytic', prompt: 'x', width: 256, height: 256, image_num: 1, steps: 6, guidance_scale: 7.5, sampler_name: 'Euler a', seed: 1, image_base64: image, mask_image_base64: black },
        }),
      });
    const first = await submit();
    const body = (await first.json()) as ErrorBody;
    expect(first.status, JSON.stringify(body)).toBe(400);
    expect(body.error).toMatchObject({ code: 'invalid_mask', param: 'request.mask_image_base64' });
    const second = await submit();
    expect(second.status).toBe(429);
  });
});
