import { env, exports } from 'cloudflare:workers';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { encodeBase64 } from '../../../edge/src/lib/base64';
import { newApiKeyRecord } from '@image-api/shared/api/api-key';
import type { ImagesResponse } from '@image-api/shared/api/openai-images';
import type { ErrorBody } from '@image-api/shared/errors';
import { seedApiKey } from '../helpers/api-keys';
import { installFakeGpuService, type FakeGpuService } from '../helpers/fake-gpu-service';
import { solidPng } from '../helpers/png';
import { addFakeImageHost } from './helpers/fake-image-host';
import { alphaMaskPng, jpegHeader, pngHeaderOnly, whiteMaskPng } from './helpers/png-encode';

const KEY = 'sk-test-edits';
const ORIGIN = 'https://edge.test';

type FormValue = string | Uint8Array | Array<string | Uint8Array>;

/** POST multipart/form-data the way the openai SDK does (files with a name and a type). */
function postForm(path: string, fields: Record<string, FormValue>): Promise<Response> {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (typeof item === 'string') form.append(name, item);
      else form.append(name, new File([item], `${name.replace('[]', '')}.png`, { type: 'image/png' }));
    }
  }
  return exports.default.fetch(`${ORIGIN}${path}`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` }, body: form });
}

function postJson(path: string, body: unknown): Promise<Response> {
  return exports.default.fetch(`${ORIGIN}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

async function expectError(response: Response, status: number, param: string | null, code?: string): Promise<ErrorBody> {
  const body = (await response.json()) as ErrorBody;
  expect({ status: response.status, param: body.error.param }).toEqual({ status, param });
  if (code) expect(body.error.code).toBe(code);
  return body;
}

/** The R2 objects of a task by file name, with their metadata. */
async function taskObjects(taskId: string): Promise<Map<string, R2Object>> {
  const listing = await env.IMAGES.list();
  const objects = new Map<string, R2Object>();
  for (const { key } of listing.objects.filter((o) => o.key.includes(`/${taskId}/`))) {
    objects.set(key.split('/').pop()!, (await env.IMAGES.head(key))!);
  }
  return objects;
}

/** A 128×96 source image and an alpha mask with a transparent 16×16 square. */
let image: Uint8Array;
let mask: Uint8Array;

describe('POST /v1/images/edits', () => {
  let gpu: FakeGpuService;
  beforeAll(async () => {
    await seedApiKey(env.API_KEYS, { key: KEY, name: 'edits-test', tenant: 'tenant-e' });
    image = await solidPng(128, 96, [0, 0, 255]);
    mask = await alphaMaskPng(128, 96, (x, y) => x >= 8 && x < 24 && y >= 8 && y < 24);
  });
  beforeEach(() => {
    gpu = installFakeGpuService(env.GPU_SERVICE_URL, env.GPU_SERVICE_TOKEN);
  });
  afterEach(() => gpu.restore());

  describe('success', () => {
    it('image + mask → an inpaint job with both files, OpenAI mask convention, stored inputs and outputs', async () => {
      const response = await postForm('/v1/images/edits', { image, mask, prompt: 'a red square', n: '2', seed: '7', response_format: 'b64_json', user: 'u1' });
      expect(response.status).toBe(200);
      const taskId = response.headers.get('x-task-id')!;
      expect(taskId).toMatch(/^[0-9a-f-]{36}$/);
      const body = (await response.json()) as ImagesResponse;
      expect(body.data.map((d) => d.seed)).toEqual([7, 8]);
      expect(body.data[0].b64_json).toBe(encodeBase64(gpu.images[0]));
      expect(body.usage).toMatchObject({ images: 2, width: 128, height: 96, steps: 10 });

      expect(gpu.jobs).toHaveLength(1);
      expect(gpu.jobs[0]).toMatchObject({
        id: taskId,
        tenant: 'tenant-e',
        model: 'tiny-analytic',
        mode: 'inpaint',
        prompt: 'a red square',
        width: 128,
        height: 96,
        batch_size: 2,
        seed: 7,
        steps: 10,
        sampler: 'euler_ancestral',
        cfg_scale: 4.5,
        strength: 0.75,
        strength_schedule: 'scaled',
        mask_mode: 'alpha',
        init_image: encodeBase64(image),
        mask: encodeBase64(mask),
      });

      const objects = await taskObjects(taskId);
      expect([...objects.keys()].sort()).toEqual(['0.png', '1.png', 'input-0.png', 'input-1.png']);
      expect(objects.get('input-0.png')!.customMetadata).toMatchObject({ role: 'image', source: 'upload', width: '128', height: '96', key_name: 'edits-test' });
      expect(objects.get('input-1.png')!.customMetadata).toMatchObject({ role: 'mask', source: 'upload' });
      expect(objects.get('0.png')!.customMetadata).toMatchObject({ style: 'openai.edits', mode: 'inpaint', mask_mode: 'alpha', user: 'u1', seed: '7' });
      // The reproducibility receipt, and a task of this style that GET /v1/tasks/:id shows.
      expect(body.receipt).toMatchObject({ model: 'tiny-analytic', mode: 'inpaint', seed: 7, seeds: [7, 8], width: 128, height: 96 });
      const task = await exports.default.fetch(`${ORIGIN}/v1/tasks/${taskId}`, { headers: { authorization: `Bearer ${KEY}` } });
      expect(task.status).toBe(200);
      const taskJson = (await task.json()) as { style: string; status: string; data: unknown[] };
      expect(taskJson).toMatchObject({ style: 'openai.edits', status: 'SUCCEED' });
      expect(taskJson.data).toHaveLength(2);
      const storedInput = await env.IMAGES.get([...(await env.IMAGES.list()).objects.map((o) => o.key)].find((k) => k.endsWith(`${taskId}/input-0.png`))!);
      expect(new Uint8Array(await storedInput!.arrayBuffer())).toEqual(image);
    });

    it('no mask → img2img of the whole image with the default strength 0.75; url answers by default', async () => {
      const response = await postForm('/v1/images/edits', { image, prompt: 'make it red' });
      expect(response.status).toBe(200);
      const body = (await response.json()) as ImagesResponse;
      expect(body.data[0].url).toMatch(/\/v1\/files\/tenant-e\/.+\/0\.png\?exp=\d+&sig=[0-9a-f]{64}$/);
      expect(gpu.jobs[0]).toMatchObject({ mode: 'img2img', strength: 0.75, init_image: encodeBase64(image) });
      expect(gpu.jobs[0].mask).toBeUndefined();
      const file = await exports.default.fetch(body.data[0].url!);
      expect(file.status).toBe(200);
    });

    it('image[] with one file is the image to edit', async () => {
      const response = await postForm('/v1/images/edits', { 'image[]': [image], prompt: 'x', response_format: 'b64_json' });
      expect(response.status).toBe(200);
      expect(gpu.jobs[0].init_image).toBe(encodeBase64(image));
      expect(gpu.jobs[0]).toMatchObject({ width: 128, height: 96 });
    });

    it('a second image (image[1], images[1]) is a 400 naming it, never silently dropped; more than 16 is a 400', async () => {
      const second = await solidPng(32, 32, [0, 255, 0]);
      const multi = await expectError(await postForm('/v1/images/edits', { 'image[]': [image, second], prompt: 'x' }), 400, 'image[1]', 'unsupported_parameter');
      expect(multi.error.message).toMatch(/edits one image per request/);
      const dataUrl = (png: Uint8Array) => `data:image/png;base64,${encodeBase64(png)}`;
      const json = await exports.default.fetch(`${ORIGIN}/v1/images/edits`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'x', images: [{ image_url: dataUrl(image) }, { image_url: dataUrl(second) }] }),
      });
      await expectError(json, 400, 'images[1].image_url', 'unsupported_parameter');
      await expectError(await postForm('/v1/images/edits', { 'image[]': Array.from({ length: 17 }, () => second), prompt: 'x' }), 400, 'image');
      expect(gpu.jobs).toHaveLength(0);
    });

    it("OpenAI's JSON form images: [{image_url}] edits that image", async () => {
      const response = await exports.default.fetch(`${ORIGIN}/v1/images/edits`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'x', response_format: 'b64_json', images: [{ image_url: `data:image/png;base64,${encodeBase64(image)}` }] }),
      });
      expect(response.status, await response.clone().text()).toBe(200);
      expect(gpu.jobs[0].init_image).toBe(encodeBase64(image));
    });

    it('input_fidelity high lowers the default strength to 0.5; an explicit strength wins', async () => {
      await postForm('/v1/images/edits', { image, prompt: 'x', input_fidelity: 'high', response_format: 'b64_json' });
      await postForm('/v1/images/edits', { image, prompt: 'x', input_fidelity: 'low', response_format: 'b64_json' });
      await postForm('/v1/images/edits', { image, prompt: 'x', input_fidelity: 'high', strength: '0.9', response_format: 'b64_json' });
      expect(gpu.jobs.map((job) => job.strength)).toEqual([0.5, 0.75, 0.9]);
    });

    it('background transparent is a 400 naming background; opaque and auto work; the response has the SDK fields', async () => {
      await expectError(await postForm('/v1/images/edits', { image, prompt: 'x', background: 'transparent' }), 400, 'background', 'unsupported_parameter');
      await expectError(await postForm('/v1/images/edits', { image, prompt: 'x', output_compression: '50' }), 400, 'output_compression');
      expect(gpu.jobs).toHaveLength(0);
      for (const background of ['opaque', 'auto']) {
        const response = await postForm('/v1/images/edits', { image, prompt: 'x', background, quality: 'high', response_format: 'b64_json' });
        expect(response.status).toBe(200);
        expect(await response.json()).toMatchObject({ background: 'opaque', output_format: 'png', quality: 'high', size: '128x96' });
      }
    });

    it('mask_mode=white takes white = repaint', async () => {
      const white = await whiteMaskPng(128, 96, (x) => x < 4);
      const response = await postForm('/v1/images/edits', { image, mask: white, mask_mode: 'white', prompt: 'x', response_format: 'b64_json' });
      expect(response.status).toBe(200);
      expect(gpu.jobs[0]).toMatchObject({ mode: 'inpaint', mask_mode: 'white', mask: encodeBase64(white) });
    });

    it('size defaults to the image size scaled to the model max (aspect kept) and rounded down to multiples of 8', async () => {
      // The fake model allows 512² pixels: 1000×700 → ×0.612 → 612×428 → 608×424.
      const response = await postForm('/v1/images/edits', { image: jpegHeader(1000, 700), prompt: 'x', response_format: 'b64_json' });
      expect(response.status).toBe(200);
      expect(gpu.jobs[0]).toMatchObject({ width: 608, height: 424 });
      const objects = await taskObjects(response.headers.get('x-task-id')!);
      expect(objects.has('input-0.jpg')).toBe(true);
      // A small odd-sized image is rounded down, not up.
      await postForm('/v1/images/edits', { image: await solidPng(100, 70, [1, 2, 3]), prompt: 'x', response_format: 'b64_json' });
      expect(gpu.jobs[1]).toMatchObject({ width: 96, height: 64 });
    });

    it('an explicit size and the GPUStack advanced fields reach the job', async () => {
      const response = await postForm('/v1/images/edits', {
        image,
        prompt: 'x',
        size: '160x120',
        sample_method: 'dpm++2m',
        schedule_method: 'karras',
        sampling_steps: '6',
        cfg_scale: '7.5',
        strength: '0.4',
        negative_prompt: 'blurry',
        output_format: 'webp',
        response_format: 'b64_json',
      });
      expect(response.status).toBe(200);
      expect(gpu.jobs[0]).toMatchObject({
        width: 160,
        height: 120,
        sampler: 'dpmpp_2m',
        scheduler: 'karras',
        steps: 6,
        cfg_scale: 7.5,
        strength: 0.4,
        negative_prompt: 'blurry',
        output: { format: 'webp' },
      });
    });

    it('JSON body with image and mask as data URLs / base64', async () => {
      const response = await postJson('/v1/images/edits', {
        image: `data:image/png;base64,${encodeBase64(image)}`,
        mask: encodeBase64(mask),
        prompt: 'x',
        response_format: 'b64_json',
      });
      expect(response.status).toBe(200);
      expect(gpu.jobs[0]).toMatchObject({ mode: 'inpaint', init_image: encodeBase64(image), mask: encodeBase64(mask) });
    });

    it('JSON body with an https image URL: fetched, stored with its URL', async () => {
      const host = addFakeImageHost({ 'https://images.example.com/cat.png': () => new Response(image, { headers: { 'content-type': 'image/png' } }) });
      const response = await postJson('/v1/images/edits', { image: 'https://images.example.com/cat.png', prompt: 'x', response_format: 'b64_json' });
      expect(response.status).toBe(200);
      expect(host.requested).toEqual(['https://images.example.com/cat.png']);
      expect(gpu.jobs[0].init_image).toBe(encodeBase64(image));
      const objects = await taskObjects(response.headers.get('x-task-id')!);
      expect(objects.get('input-0.png')!.customMetadata).toMatchObject({ source: 'url', url: 'https://images.example.com/cat.png' });
    });
  });

  describe('streaming', () => {
    it('stream=true answers with the event stream (progress, then the completed image) and asks for previews', async () => {
      const response = await postForm('/v1/images/edits', { image, mask, prompt: 'a red square', stream: 'true', response_format: 'b64_json' });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toContain('text/event-stream');
      const text = await response.text();
      const events = [...text.matchAll(/^event: (.+)$/gm)].map((m) => m[1]);
      // OpenAI names an edit's events image_edit.* (SDK ImageEditStreamEvent).
      expect(events).toContain('image_edit.progress');
      expect(events.filter((e) => e.startsWith('image_generation.'))).toEqual([]);
      expect(events.at(-1)).toBe('image_edit.completed');
      const completed = JSON.parse(text.split('event: image_edit.completed\ndata: ')[1].split('\n')[0]);
      expect(completed).toMatchObject({ type: 'image_edit.completed', size: '128x96', background: 'opaque', output_format: 'png' });
      expect(completed.b64_json.length).toBeGreaterThan(100);
      expect(gpu.jobs.at(-1)).toMatchObject({ mode: 'inpaint', preview: 'fast' });
      expect(response.headers.get('x-task-id')).toBe(gpu.jobs.at(-1)!.id);
    });

  });

  describe('validation: 4xx naming the field, no GPU work', () => {
    afterEach(() => expect(gpu.jobs).toHaveLength(0));

    it('a mask of another size than the image', async () => {
      const small = await alphaMaskPng(32, 32, () => true);
      const body = await expectError(await postForm('/v1/images/edits', { image, mask: small, prompt: 'x' }), 400, 'mask', 'invalid_mask');
      expect(body.error.message).toContain('mask must be the same size as image');
    });

    it('a mask that covers nothing (fully opaque) is refused, never a whole-image repaint', async () => {
      const opaque = await alphaMaskPng(128, 96, () => false);
      const body = await expectError(await postForm('/v1/images/edits', { image, mask: opaque, prompt: 'x' }), 400, 'mask', 'invalid_mask');
      expect(body.error.message).toContain('covers nothing');
    });

    it('a white-mode mask that is all black covers nothing', async () => {
      const black = await whiteMaskPng(128, 96, () => false);
      await expectError(await postForm('/v1/images/edits', { image, mask: black, mask_mode: 'white', prompt: 'x' }), 400, 'mask', 'invalid_mask');
    });

    it('an alpha-mode mask without transparency', async () => {
      const body = await expectError(await postForm('/v1/images/edits', { image, mask: await solidPng(128, 96, [0, 0, 0]), prompt: 'x' }), 400, 'mask', 'invalid_mask');
      expect(body.error.message).toContain('no alpha channel');
    });

    it('an image that is not PNG/JPEG/WebP (GIF) → 415', async () => {
      const gif = new TextEncoder().encode('GIF89a\x40\x00\x30\x00');
      await expectError(await postForm('/v1/images/edits', { image: gif, prompt: 'x' }), 415, 'image', 'unsupported_media_type');
    });

    it('a decompression bomb (header says 40000x40000) is refused before decoding', async () => {
      await expectError(await postForm('/v1/images/edits', { image: pngHeaderOnly(40_000, 40_000), prompt: 'x' }), 400, 'image', 'image_too_large');
    });

    it('a mask bomb is refused too', async () => {
      await expectError(await postForm('/v1/images/edits', { image, mask: pngHeaderOnly(40_000, 40_000), prompt: 'x' }), 400, 'mask', 'image_too_large');
    });

    it('a body over 20 MiB → 413', async () => {
      const huge = new Uint8Array(21 * 1024 * 1024);
      huge.set(image);
      await expectError(await postForm('/v1/images/edits', { image: huge, prompt: 'x' }), 413, null, 'payload_too_large');
    });

    it('no image', async () => {
      await expectError(await postForm('/v1/images/edits', { prompt: 'x' }), 400, 'image', 'missing_parameter');
    });

    it('no prompt', async () => {
      await expectError(await postForm('/v1/images/edits', { image }), 400, 'prompt', 'missing_parameter');
    });

    it.each([
      ['n', '0'],
      ['n', '11'],
      ['n', 'two'],
      ['size', '100x100'],
      ['strength', '1.5'],
      ['mask_mode', 'black'],
      ['response_format', 'gif'],
    ])('%s = %s', async (field, value) => {
      await expectError(await postForm('/v1/images/edits', { image, prompt: 'x', [field]: value }), 400, field);
    });

    it('a size over the model max pixels', async () => {
      await expectError(await postForm('/v1/images/edits', { image, prompt: 'x', size: '1024x1024' }), 400, 'size');
    });

    it('an unknown sample_method', async () => {
      await expectError(await postForm('/v1/images/edits', { image, prompt: 'x', sample_method: 'warp' }), 400, 'sample_method');
    });

    it('partial_images above 3 is a 400 naming it', async () => {
      await expectError(await postForm('/v1/images/edits', { image, prompt: 'x', stream: 'true', partial_images: '4' }), 400, 'partial_images');
    });

    it('an unknown model → 404', async () => {
      await expectError(await postForm('/v1/images/edits', { image, prompt: 'x', model: 'nope' }), 404, 'model', 'model_not_found');
    });

    it('a text/plain body → 415', async () => {
      const response = await exports.default.fetch(`${ORIGIN}/v1/images/edits`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'text/plain' },
        body: 'hello',
      });
      await expectError(response, 415, null, 'unsupported_media_type');
    });

    it('an image URL on a private address (JSON body)', async () => {
      await expectError(await postJson('/v1/images/edits', { image: 'https://10.0.0.1/a.png', prompt: 'x' }), 400, 'image', 'invalid_image_url');
    });

    it('no API key → 401', async () => {
      const response = await exports.default.fetch(`${ORIGIN}/v1/images/edits`, { method: 'POST', body: new FormData() });
      expect(response.status).toBe(401);
    });
  });
});

describe('POST /v1/images/variations', () => {
  let gpu: FakeGpuService;
  beforeAll(async () => {
    await seedApiKey(env.API_KEYS, { key: KEY, name: 'edits-test', tenant: 'tenant-e' });
    image = await solidPng(128, 96, [0, 0, 255]);
  });
  beforeEach(() => {
    gpu = installFakeGpuService(env.GPU_SERVICE_URL, env.GPU_SERVICE_TOKEN);
  });
  afterEach(() => gpu.restore());

  it('image only → img2img with an empty prompt and strength 0.6', async () => {
    const response = await postForm('/v1/images/variations', { image, n: '2', response_format: 'b64_json' });
    expect(response.status).toBe(200);
    const body = (await response.json()) as ImagesResponse;
    expect(body.data).toHaveLength(2);
    expect(gpu.jobs[0]).toMatchObject({ mode: 'img2img', prompt: '', strength: 0.6, batch_size: 2, width: 128, height: 96, init_image: encodeBase64(image) });
    const objects = await taskObjects(response.headers.get('x-task-id')!);
    expect(objects.get('0.png')!.customMetadata).toMatchObject({ style: 'openai.variations' });
  });

  it('an optional prompt and strength are honoured', async () => {
    await postForm('/v1/images/variations', { image, prompt: 'more red', strength: '0.3', response_format: 'b64_json' });
    expect(gpu.jobs[0]).toMatchObject({ prompt: 'more red', strength: 0.3 });
  });

  it('a mask is refused (variations have none)', async () => {
    await expectError(await postForm('/v1/images/variations', { image, mask: image }), 400, 'mask', 'unsupported_parameter');
    expect(gpu.jobs).toHaveLength(0);
  });

  it('a JPEG with a damaged header → 400 invalid_image', async () => {
    await expectError(await postForm('/v1/images/variations', { image: new Uint8Array([0xff, 0xd8, 0xff, 0xd9]) }), 400, 'image', 'invalid_image');
  });
});

describe('the compute-unit budget counts the steps an edit actually runs', () => {
  let gpu: FakeGpuService;
  const BUDGET_KEY = 'sk-test-edits-budget';
  beforeAll(async () => {
    image = await solidPng(128, 96, [0, 0, 255]);
    // 0.1 compute unit per minute: 128×96 at strength 0.75 runs ⌊0.75·10⌋ + 1 = 8 steps = 0.098 units.
    const record = await newApiKeyRecord(BUDGET_KEY, { name: 'budget', tenant: 'tenant-b', limits: { compute_units_per_minute: 0.1 } });
    await env.API_KEYS.put(record.key_hash, JSON.stringify(record));
  });
  beforeEach(() => {
    gpu = installFakeGpuService(env.GPU_SERVICE_URL, env.GPU_SERVICE_TOKEN);
  });
  afterEach(() => gpu.restore());

  const edit = (strength: string) => {
    const form = new FormData();
    form.append('image', new File([image], 'image.png', { type: 'image/png' }));
    form.append('prompt', 'x');
    form.append('strength', strength);
    form.append('response_format', 'b64_json');
    return exports.default.fetch(`${ORIGIN}/v1/images/edits`, { method: 'POST', headers: { authorization: `Bearer ${BUDGET_KEY}` }, body: form });
  };

  it('strength 1 (10 steps, 0.123 units) is more than the whole budget; strength 0.75 (8 steps) fits', async () => {
    await expectError(await edit('1'), 400, null, 'compute_units_exceed_limit');
    expect(gpu.jobs).toHaveLength(0);
    const response = await edit('0.75');
    expect(response.status).toBe(200);
    expect(gpu.jobs).toHaveLength(1);
  });
});
