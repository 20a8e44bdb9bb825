import { env, exports } from 'cloudflare:workers';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../../edge/src/app';
import { encodeBase64 } from '../../../edge/src/lib/base64';
import { IMG2IMG_DEFAULTS, type Img2ImgResponse } from '@image-api/shared/api/img2img';
import type { ErrorBody } from '@image-api/shared/errors';
import { seedApiKey } from '../helpers/api-keys';
import { installFakeGpuService, type FakeGpuService } from '../helpers/fake-gpu-service';
import { solidPng } from '../helpers/png';
import { addFakeImageHost } from './helpers/fake-image-host';
import { pngHeaderOnly } from './helpers/png-encode';

const KEY = 'sk-test-img2img';
const ORIGIN = 'https://edge.test';

function post(body: unknown): Promise<Response> {
  return exports.default.fetch(`${ORIGIN}/v1/img2img`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function expectError(response: Response, status: number, param: string | null, code?: string): Promise<ErrorBody> {
  const body = (await response.json()) as ErrorBody;
  expect({ status: response.status, param: body.error.param }).toEqual({ status, param });
  if (code) expect(body.error.code).toBe(code);
  return body;
}

let source: Uint8Array;

describe('POST /v1/img2img (ComfyUI names)', () => {
  let gpu: FakeGpuService;
  beforeAll(async () => {
    await seedApiKey(env.API_KEYS, { key: KEY, name: 'comfy-test', tenant: 'tenant-c' });
    source = await solidPng(96, 64, [255, 0, 0]);
  });
  beforeEach(() => {
    gpu = installFakeGpuService(env.GPU_SERVICE_URL, env.GPU_SERVICE_TOKEN);
  });
  afterEach(() => gpu.restore());

  describe('defaults of the seed document', () => {
    it('an empty body is text-to-image with every ComfyUI default; seed 0 is used as 0', async () => {
      const response = await post({});
      expect(response.status).toBe(200);
      const taskId = response.headers.get('x-task-id');
      const body = (await response.json()) as Img2ImgResponse;
      expect(gpu.jobs).toHaveLength(1);
      expect(gpu.jobs[0]).toMatchObject({
        id: taskId,
        tenant: 'tenant-c',
        model: 'tiny-analytic',
        mode: 'txt2img',
        seed: 0,
        steps: 20,
        batch_size: 1,
        width: 512,
        height: 512,
        sampler: 'euler',
        scheduler: 'normal',
        cfg_scale: 8,
        prompt: 'beautiful scenery nature glass bottle landscape, purple galaxy bottle',
        negative_prompt: 'text, watermark',
      });
      expect(gpu.jobs[0].init_image).toBeUndefined();
      expect(body.parameters).toEqual({
        model: 'tiny-analytic',
        mode: 'txt2img',
        seed: 0,
        seeds: [0],
        steps: 20,
        batch_size: 1,
        width: 512,
        height: 512,
        sampler_name: 'euler',
        scheduler: 'normal',
        cfg: 8,
        // Text-to-image starts from noise: the strength actually used is 1.
        denoise_strength: 1,
        prompt: IMG2IMG_DEFAULTS.prompt,
        negative_prompt: IMG2IMG_DEFAULTS.negative_prompt,
        image_url: '',
      });
      expect(body.receipt).toMatchObject({ model: 'tiny-analytic', seed: 0, steps: 20, sampler: 'euler', scheduler: 'normal', cfg_scale: 8 });
      const task = await exports.default.fetch(`${ORIGIN}/v1/tasks/${taskId}`, { headers: { authorization: `Bearer ${KEY}` } });
      expect(((await task.json()) as { style: string }).style).toBe('img2img');
      // url is the default response format.
      expect(body.data[0].url).toMatch(/\/v1\/files\/tenant-c\/.+\/0\.png\?exp=/);
      expect(body.data[0].seed).toBe(0);
    });

    it('an image_url (data URL) makes it img2img with denoise_strength 0.75 and ComfyUI step semantics', async () => {
      const response = await post({ image_url: `data:image/png;base64,${encodeBase64(source)}`, width: 96, height: 64, response_format: 'b64_json' });
      expect(response.status).toBe(200);
      const body = (await response.json()) as Img2ImgResponse;
      expect(gpu.jobs[0]).toMatchObject({
        mode: 'img2img',
        init_image: encodeBase64(source),
        strength: 0.75,
        strength_schedule: 'steps',
        steps: 20,
        width: 96,
        height: 64,
      });
      expect(body.parameters.mode).toBe('img2img');
      expect(body.parameters.image_url).toBe(`data:image/png (${source.length} bytes)`);
      const listing = await env.IMAGES.list();
      expect(listing.objects.some((o) => o.key.endsWith(`/${response.headers.get('x-task-id')}/input-0.png`))).toBe(true);
    });
  });

  describe('fields', () => {
    it('denoise_strength other than 1 without a source image is a 400 naming it (text-to-image starts from noise)', async () => {
      const refused = await post({ denoise_strength: 0.5 });
      expect(refused.status).toBe(400);
      expect(((await refused.json()) as { error: { param: string } }).error.param).toBe('denoise_strength');
      expect(gpu.jobs).toHaveLength(0);
      expect((await post({ denoise_strength: 1, response_format: 'b64_json' })).status).toBe(200);
    });

    it('ComfyUI sampler and scheduler names, cfg, batch seeds and denoise_strength reach the job', async () => {
      const response = await post({
        image_url: encodeBase64(source),
        seed: 41,
        steps: 8,
        batch_size: 3,
        width: 128,
        height: 64,
        sampler_name: 'dpmpp_2m',
        scheduler: 'karras',
        cfg: 5.5,
        denoise_strength: 0.5,
        prompt: 'a red barn',
        negative_prompt: '',
        response_format: 'b64_json',
      });
      expect(response.status).toBe(200);
      const body = (await response.json()) as Img2ImgResponse;
      expect(gpu.jobs[0]).toMatchObject({
        seed: 41,
        steps: 8,
        batch_size: 3,
        width: 128,
        height: 64,
        sampler: 'dpmpp_2m',
        scheduler: 'karras',
        cfg_scale: 5.5,
        strength: 0.5,
        prompt: 'a red barn',
        negative_prompt: '',
      });
      expect(body.data.map((d) => d.seed)).toEqual([41, 42, 43]);
      expect(body.parameters.seeds).toEqual([41, 42, 43]);
      expect(body.parameters.image_url).toBe(`base64:image/png (${source.length} bytes)`);
    });

    it('an https image_url is fetched and echoed in parameters', async () => {
      const host = addFakeImageHost({ 'https://images.example.com/src.png': () => new Response(source) });
      const response = await post({ image_url: 'https://images.example.com/src.png', width: 96, height: 64, response_format: 'b64_json' });
      expect(response.status).toBe(200);
      expect(host.requested).toEqual(['https://images.example.com/src.png']);
      expect(gpu.jobs[0].init_image).toBe(encodeBase64(source));
      expect(((await response.json()) as Img2ImgResponse).parameters.image_url).toBe('https://images.example.com/src.png');
    });

    it('http image URLs work only with ALLOW_HTTP_IMAGE_URLS="true" (development)', async () => {
      addFakeImageHost({ 'http://images.example.com/src.png': () => new Response(source) });
      const body = JSON.stringify({ image_url: 'http://images.example.com/src.png', width: 96, height: 64, response_format: 'b64_json' });
      const init = () => ({ method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body });
      const app = buildApp();
      await expectError(await app.request('/v1/img2img', init(), env), 400, 'image_url', 'invalid_image_url');
      const allowed = await app.request('/v1/img2img', init(), { ...env, ALLOW_HTTP_IMAGE_URLS: 'true' });
      expect(allowed.status).toBe(200);
      expect(gpu.jobs).toHaveLength(1);
    });
  });

  describe('SSRF: image_url never reaches private, loopback or link-local hosts', () => {
    afterEach(() => expect(gpu.jobs).toHaveLength(0));

    it.each([
      ['127.0.0.1', 'https://127.0.0.1:8788/v1/models'],
      ['10.x', 'https://10.20.30.40/a.png'],
      ['169.254.x (metadata)', 'https://169.254.169.254/latest/meta-data/'],
      ['[::1]', 'https://[::1]/a.png'],
      ['localhost', 'https://localhost/a.png'],
      ['192.168.x', 'https://192.168.1.1/a.png'],
      ['a decimal loopback', 'https://2130706433/a.png'],
      ['http without the development flag', 'http://images.example.com/a.png'],
      ['file:', 'file:///etc/passwd'],
    ])('%s', async (_what, url) => {
      const host = addFakeImageHost({});
      await expectError(await post({ image_url: url }), 400, 'image_url', 'invalid_image_url');
      expect(host.requested).toEqual([]);
    });

    it('a public URL that redirects to a private address', async () => {
      const host = addFakeImageHost({
        'https://images.example.com/r.png': () => new Response(null, { status: 302, headers: { location: 'http://169.254.169.254/latest/meta-data/' } }),
      });
      const body = await expectError(await post({ image_url: 'https://images.example.com/r.png' }), 400, 'image_url', 'invalid_image_url');
      expect(body.error.message).toContain('redirected');
      expect(host.requested).toEqual(['https://images.example.com/r.png']);
    });

    it('a URL that answers 404', async () => {
      addFakeImageHost({ 'https://images.example.com/missing.png': () => new Response('no', { status: 404 }) });
      await expectError(await post({ image_url: 'https://images.example.com/missing.png' }), 400, 'image_url', 'image_url_fetch_failed');
    });

    it('a URL that serves an HTML page, not an image → 415', async () => {
      addFakeImageHost({ 'https://images.example.com/page': () => new Response('<html><body>hi</body></html>') });
      await expectError(await post({ image_url: 'https://images.example.com/page' }), 415, 'image_url', 'unsupported_media_type');
    });

    it('a URL that serves a decompression bomb header', async () => {
      addFakeImageHost({ 'https://images.example.com/bomb.png': () => new Response(pngHeaderOnly(60_000, 60_000)) });
      await expectError(await post({ image_url: 'https://images.example.com/bomb.png' }), 400, 'image_url', 'image_too_large');
    });
  });

  describe('validation: 400 naming the field, no GPU work', () => {
    afterEach(() => expect(gpu.jobs).toHaveLength(0));

    it('width × height over the model max pixels is refused, not clamped', async () => {
      const body = await expectError(await post({ width: 1024, height: 1024 }), 400, 'width');
      expect(body.error.message).toContain(String(512 * 512));
    });

    it.each([
      ['width', 500],
      ['height', 32],
      ['steps', 0],
      ['batch_size', 11],
      ['cfg', -1],
      ['denoise_strength', 1.5],
      ['seed', -1],
    ])('%s = %s', async (field, value) => {
      await expectError(await post({ [field]: value }), 400, field);
    });

    it('a stable-diffusion.cpp sampler name is not a ComfyUI name', async () => {
      const body = await expectError(await post({ sampler_name: 'euler_a' }), 400, 'sampler_name');
      expect(body.error.message).toContain('euler_ancestral');
    });

    it('an unknown scheduler', async () => {
      await expectError(await post({ scheduler: 'discrete' }), 400, 'scheduler');
    });

    it('an unknown model → 404', async () => {
      await expectError(await post({ model: 'sd1.5/majicmixRealistic_betterV6.safetensors' }), 404, 'model', 'model_not_found');
    });

    it('a body over 20 MiB → 413', async () => {
      await expectError(await post({ image_url: 'A'.repeat(21 * 1024 * 1024) }), 413, null, 'payload_too_large');
    });

    it('malformed base64 in image_url', async () => {
      await expectError(await post({ image_url: 'not*base64' }), 400, 'image_url', 'invalid_image');
    });
  });
});
