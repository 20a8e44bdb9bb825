import { env, exports } from 'cloudflare:workers';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../../edge/src/app';
import type { EdgeBindings } from '../../../edge/src/env';
import { decodeBase64 } from '../../../edge/src/lib/base64';
import type { ImagesResponse } from '@image-api/shared/api/openai-images';
import type { ErrorBody } from '@image-api/shared/errors';
import { seedApiKey } from '../helpers/api-keys';
import { newApiKeyRecord } from '@image-api/shared/api/api-key';
import { installFakeGpuService, type FakeGpuService } from '../helpers/fake-gpu-service';
import { PNG_SIGNATURE } from '../helpers/png';

const KEY = 'sk-test-images';
const ORIGIN = 'https://edge.test';

function post(body: unknown, path = '/v1/images/generations'): Promise<Response> {
  return exports.default.fetch(`${ORIGIN}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function expectError(response: Response, status: number, param: string | null, code?: string): Promise<ErrorBody> {
  expect(response.status).toBe(status);
  const body = (await response.json()) as ErrorBody;
  expect(body.error.param).toBe(param);
  if (code) expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  return body;
}

async function objectKeysOfTask(taskId: string): Promise<string[]> {
  const listing = await env.IMAGES.list();
  return listing.objects.map((object) => object.key).filter((key) => key.includes(`/${taskId}/`));
}

describe('POST /v1/images/generations', () => {
  let gpu: FakeGpuService;
  beforeAll(async () => {
    await seedApiKey(env.API_KEYS, { key: KEY, name: 'images-test', tenant: 'tenant-a' });
  });
  beforeEach(() => {
    gpu = installFakeGpuService(env.GPU_SERVICE_URL, env.GPU_SERVICE_TOKEN);
  });
  afterEach(() => gpu.restore());

  describe('validation: 400 naming the field', () => {
    it.each([
      ['not WxH', '512'],
      ['not a number', 'bigxsmall'],
      ['not a multiple of 8', '500x512'],
      ['below 64', '32x32'],
    ])('size %s', async (_why, size) => {
      const body = await expectError(await post({ prompt: 'a red apple', size }), 400, 'size', 'invalid_parameter');
      expect(body.error.type).toBe('invalid_request_error');
    });

    it('size with more pixels than the model allows', async () => {
      const body = await expectError(await post({ prompt: 'a red apple', size: '1024x1024' }), 400, 'size');
      expect(body.error.message).toContain(String(512 * 512));
      expect(gpu.jobs).toHaveLength(0);
    });

    it.each([0, 11, 1.5])('n = %s', async (n) => {
      await expectError(await post({ prompt: 'a red apple', n }), 400, 'n');
    });

    it('an empty prompt', async () => {
      await expectError(await post({ prompt: '' }), 400, 'prompt', 'invalid_parameter');
    });

    it('a missing prompt', async () => {
      await expectError(await post({ n: 1 }), 400, 'prompt', 'missing_parameter');
    });

    it('a prompt over 4000 characters', async () => {
      await expectError(await post({ prompt: 'x'.repeat(4001) }), 400, 'prompt');
    });

    it('an unknown sample_method, listing the accepted names', async () => {
      const body = await expectError(await post({ prompt: 'a red apple', sample_method: 'warp_drive' }), 400, 'sample_method');
      for (const name of ['euler_a', 'euler', 'heun', 'dpm++2m', 'lcm']) expect(body.error.message).toContain(name);
    });

    it('an unknown schedule_method', async () => {
      const body = await expectError(await post({ prompt: 'a red apple', schedule_method: 'zigzag' }), 400, 'schedule_method');
      expect(body.error.message).toContain('karras');
    });

    it('a seed below -1', async () => {
      await expectError(await post({ prompt: 'a red apple', seed: -2 }), 400, 'seed');
    });

    it('a bad response_format', async () => {
      await expectError(await post({ prompt: 'a red apple', response_format: 'gif' }), 400, 'response_format');
    });

    it('malformed JSON gets the error body too', async () => {
      const response = await post('{"prompt": ');
      expect(response.status).toBe(400);
      const body = (await response.json()) as ErrorBody;
      expect(body.error.type).toBe('invalid_request_error');
    });

    it('partial_images outside 0..3', async () => {
      await expectError(await post({ prompt: 'a red apple', stream: true, partial_images: 4 }), 400, 'partial_images');
    });
  });

  describe('models', () => {
    it('404 model_not_found for an unknown model', async () => {
      await expectError(await post({ prompt: 'a red apple', model: 'no-such-model' }), 404, 'model', 'model_not_found');
      expect(gpu.jobs).toHaveLength(0);
    });

    it('404 for a listed name that is not a checkpoint (a LoRA)', async () => {
      await expectError(await post({ prompt: 'a red apple', model: 'some-lora' }), 404, 'model', 'model_not_found');
    });

    it('reuses the cached model list for the next requests', async () => {
      const app = buildApp();
      const init = () => ({
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
        body: JSON.stringify({ prompt: 'a red apple', response_format: 'b64_json' }),
      });
      expect((await app.request('/v1/images/generations', init(), env)).status).toBe(200);
      expect((await app.request('/v1/images/generations', init(), env)).status).toBe(200);
      expect(gpu.modelListCalls).toBe(1);
    });
  });

  describe('success', () => {
    it('url: defaults, R2 object with metadata, a signed link that serves the PNG', async () => {
      const response = await post({ prompt: 'a red apple', seed: 1234, user: 'alice' });
      expect(response.status).toBe(200);
      const taskId = response.headers.get('x-task-id');
      expect(taskId).toMatch(/^[0-9a-f-]{36}$/);
      const body = (await response.json()) as ImagesResponse;
      expect(body.created).toBeGreaterThan(1_700_000_000);
      expect(body.data).toHaveLength(1);
      expect(body.data[0].seed).toBe(1234);
      expect(body.data[0].b64_json).toBeUndefined();
      // OpenAI's token fields (image tokens = latent positions, 32·32 per 256² image) and our diffusion cost.
      expect(body.usage).toEqual({
        input_tokens: 7,
        input_tokens_details: { image_tokens: 0, text_tokens: 7 },
        output_tokens: 1024,
        output_tokens_details: { image_tokens: 1024 },
        total_tokens: 1031,
        images: 1,
        steps: 10,
        width: 256,
        height: 256,
        compute_units: 0.655,
      });

      // The job the GPU service received: defaults of README "Public API", native size of the model.
      expect(gpu.jobs).toHaveLength(1);
      const job = gpu.jobs[0];
      expect(job).toMatchObject({
        id: taskId,
        tenant: 'tenant-a',
        model: 'tiny-analytic',
        mode: 'txt2img',
        prompt: 'a red apple',
        width: 256,
        height: 256,
        batch_size: 1,
        seed: 1234,
        steps: 10,
        sampler: 'euler_ancestral',
        cfg_scale: 4.5,
        output: { format: 'png', quality: 90 },
        preview: 'none',
      });

      // Stored under <tenant>/<yyyy>/<mm>/<dd>/<task>/<i>.<ext> with the parameters as metadata.
      const today = new Date();
      const expectedKey = `tenant-a/${today.getUTCFullYear()}/${String(today.getUTCMonth() + 1).padStart(2, '0')}/${String(today.getUTCDate()).padStart(2, '0')}/${taskId}/0.png`;
      expect(await objectKeysOfTask(taskId!)).toEqual([expectedKey]);
      const stored = await env.IMAGES.head(expectedKey);
      expect(stored?.httpMetadata?.contentType).toBe('image/png');
      expect(stored?.customMetadata).toMatchObject({
        task_id: taskId,
        tenant: 'tenant-a',
        key_name: 'images-test',
        seed: '1234',
        model: 'tiny-analytic',
        steps: '10',
        sampler: 'euler_ancestral',
        cfg_scale: '4.5',
        width: '256',
        height: '256',
        user: 'alice',
        prompt: 'a red apple',
      });

      // The link points at that object and serves exactly the bytes the GPU service produced.
      const url = new URL(body.data[0].url!);
      expect(url.origin).toBe(ORIGIN);
      expect(decodeURIComponent(url.pathname)).toBe(`/v1/files/${expectedKey}`);
      const exp = Number(url.searchParams.get('exp'));
      expect(exp - Math.floor(Date.now() / 1000)).toBeGreaterThan(3590);
      expect(exp - Math.floor(Date.now() / 1000)).toBeLessThanOrEqual(3600);
      const file = await exports.default.fetch(url.toString());
      expect(file.status).toBe(200);
      expect(file.headers.get('content-type')).toBe('image/png');
      expect(new Uint8Array(await file.arrayBuffer())).toEqual(gpu.images[0]);
    });

    it('b64_json with n=2: the PNG bytes, seeds s and s+1, both stored', async () => {
      const response = await post({ prompt: 'a blue sky', n: 2, seed: 42, response_format: 'b64_json', size: '128x64' });
      expect(response.status).toBe(200);
      const body = (await response.json()) as ImagesResponse;
      expect(body.data.map((item) => item.seed)).toEqual([42, 43]);
      for (const [i, item] of body.data.entries()) {
        expect(item.url).toBeUndefined();
        const bytes = decodeBase64(item.b64_json!);
        expect(bytes.subarray(0, 8)).toEqual(PNG_SIGNATURE);
        expect(bytes).toEqual(gpu.images[i]);
      }
      expect(gpu.images[0]).not.toEqual(gpu.images[1]);
      expect(gpu.jobs[0]).toMatchObject({ width: 128, height: 64, batch_size: 2 });
      const keys = await objectKeysOfTask(response.headers.get('x-task-id')!);
      expect(keys.map((key) => key.split('/').pop()).sort()).toEqual(['0.png', '1.png']);
    });

    it('seed omitted or -1: a random seed is chosen at the edge and returned', async () => {
      const seeds: Array<number | string> = [];
      for (const seed of [undefined, -1]) {
        const response = await post({ prompt: 'green grass', seed, response_format: 'b64_json' });
        const body = (await response.json()) as ImagesResponse;
        seeds.push(body.data[0].seed);
      }
      expect(gpu.jobs.map((job) => job.seed)).toEqual(seeds);
      for (const seed of seeds) expect(seed).toBeGreaterThanOrEqual(0);
      expect(seeds[0]).not.toBe(seeds[1]); // 1 in 2^32 chance of a false failure
    });

    it('seeds up to 2^64 − 1 sent as plain JSON integers stay exact through the job, the response and the receipt', async () => {
      // Raw text: JSON.stringify could not even write this number; ComfyUI clients send it like this.
      const response = await post('{"prompt": "green grass", "n": 2, "response_format": "b64_json", "seed": 18446744073709551614}');
      expect(response.status, await response.clone().text()).toBe(200);
      const body = (await response.json()) as ImagesResponse & { receipt: { seed: unknown; seeds: unknown[] } };
      expect(gpu.jobs[0].seed).toBe('18446744073709551614');
      expect(body.data.map((d) => d.seed)).toEqual(['18446744073709551614', '18446744073709551615']);
      expect(body.receipt).toMatchObject({ seed: '18446744073709551614', seeds: ['18446744073709551614', '18446744073709551615'] });
      // A seed that is still a safe integer stays a JSON number; one given as a string too.
      await post('{"prompt": "x", "response_format": "b64_json", "seed": 9007199254740993}');
      await post({ prompt: 'x', response_format: 'b64_json', seed: '9007199254740991' });
      expect(gpu.jobs.slice(1).map((job) => job.seed)).toEqual(['9007199254740993', 9007199254740991]);
    });

    it('background transparent is a 400 naming background (no matting model); opaque/auto/moderation work and the response has the SDK fields', async () => {
      await expectError(await post({ prompt: 'x', background: 'transparent' }), 400, 'background', 'unsupported_parameter');
      await expectError(await post({ prompt: 'x', output_compression: 80 }), 400, 'output_compression');
      await expectError(await post({ prompt: 'x', moderation: 'strict' }), 400, 'moderation');
      expect(gpu.jobs).toHaveLength(0);
      const response = await post({ prompt: 'x', background: 'opaque', moderation: 'low', quality: 'low', output_format: 'jpeg', output_compression: 0, response_format: 'b64_json' });
      expect(response.status, await response.clone().text()).toBe(200);
      expect(await response.json()).toMatchObject({ background: 'opaque', output_format: 'jpeg', quality: 'low', size: '256x256' });
      expect(gpu.jobs[0]).toMatchObject({ steps: 6, output: { format: 'jpeg', quality: 1 } }); // 0 = the encoders' lowest, 1
      expect((await post({ prompt: 'x', background: 'auto', response_format: 'b64_json' })).status).toBe(200);
    });

    it('background transparent with a matting model listed (added while the listing was cached): job.background transparent, png or webp; jpeg is a 400', async () => {
      expect((await post({ prompt: 'x' })).status).toBe(200); // the listing is now cached, without a matting model
      gpu.models.push({ id: 'rmbg-1.4', kind: 'matting', capabilities: [], native_size: [0, 0], max_pixels: 0, loaded: false });
      const response = await post({ prompt: 'x', background: 'transparent', response_format: 'b64_json' });
      expect(response.status, await response.clone().text()).toBe(200);
      expect(gpu.jobs[1]).toMatchObject({ background: 'transparent', output: { format: 'png' } });
      expect(await response.json()).toMatchObject({ background: 'transparent', output_format: 'png', receipt: { background: 'transparent' } });
      // The stored image's R2 metadata lists the post-processing stages with their model hashes.
      const taskId = response.headers.get('x-task-id')!;
      const key = (await env.IMAGES.list()).objects.map((object) => object.key).find((k) => k.includes(`/${taskId}/`))!;
      expect(JSON.parse((await env.IMAGES.head(key))!.customMetadata!.postprocess)).toEqual([{ stage: 'matting', model: 'fake-matting', hash: 'fake' }]);
      expect((await post({ prompt: 'x', background: 'transparent', output_format: 'webp', response_format: 'b64_json' })).status).toBe(200);
      expect(gpu.jobs[2]).toMatchObject({ background: 'transparent', output: { format: 'webp' } });
      await expectError(await post({ prompt: 'x', background: 'transparent', output_format: 'jpeg' }), 400, 'background');
      for (const background of ['opaque', 'auto']) {
        const body = (await (await post({ prompt: 'x', background, response_format: 'b64_json' })).json()) as ImagesResponse;
        expect(body.background).toBe('opaque');
      }
      expect(gpu.jobs.slice(3).map((job) => job.background)).toEqual(['opaque', 'opaque']);
    });

    it('refuses a seed past 2^64 − 1, and seed + n − 1 past it, naming seed', async () => {
      await expectError(await post('{"prompt": "x", "seed": 18446744073709551616}'), 400, 'seed');
      await expectError(await post('{"prompt": "x", "n": 2, "seed": 18446744073709551615}'), 400, 'seed');
      expect(gpu.jobs).toHaveLength(0);
    });

    it('seed 0 is a real seed', async () => {
      const body = (await (await post({ prompt: 'green grass', seed: 0, response_format: 'b64_json' })).json()) as ImagesResponse;
      expect(body.data[0].seed).toBe(0);
      expect(gpu.jobs[0].seed).toBe(0);
    });

    it('quality maps to steps; sampling_steps wins over quality; GPUStack fields reach the job', async () => {
      await post({ prompt: 'x', quality: 'hd', response_format: 'b64_json' });
      await post({ prompt: 'x', quality: 'low', response_format: 'b64_json' });
      await post({
        prompt: 'x',
        quality: 'hd',
        sampling_steps: 3,
        sample_method: 'dpm++2m',
        schedule_method: 'karras',
        cfg_scale: 7,
        guidance: 3.5,
        negative_prompt: 'blurry',
        output_format: 'webp',
        output_compression: 70,
        response_format: 'b64_json',
      });
      expect(gpu.jobs.map((job) => job.steps)).toEqual([30, 6, 3]);
      expect(gpu.jobs[2]).toMatchObject({
        sampler: 'dpmpp_2m',
        scheduler: 'karras',
        cfg_scale: 7,
        guidance: 3.5,
        negative_prompt: 'blurry',
        output: { format: 'webp', quality: 70 },
      });
      expect(gpu.jobs[0].guidance).toBeUndefined();
    });

    it('the /api/images/generations alias answers the same way', async () => {
      const response = await post({ prompt: 'a red apple', response_format: 'b64_json' }, '/api/images/generations');
      expect(response.status).toBe(200);
      expect(gpu.jobs).toHaveLength(1);
    });
  });

  describe('GPU service failures', () => {
    it('503 queue_full is passed on with Retry-After', async () => {
      gpu.behaviour = {
        kind: 'status',
        status: 503,
        headers: { 'retry-after': '7' },
        body: { error: { code: 'queue_full', message: 'queue is full', param: null, type: 'server_error' } },
      };
      const response = await post({ prompt: 'a red apple' });
      await expectError(response, 503, null, 'queue_full');
      expect(response.headers.get('retry-after')).toBe('7');
    });

    it('a connection error is 502 backend_unavailable', async () => {
      gpu.behaviour = { kind: 'connection_refused' };
      await expectError(await post({ prompt: 'a red apple' }), 502, null, 'backend_unavailable');
    });

    it("the service's 400 is passed on with its param", async () => {
      gpu.behaviour = {
        kind: 'status',
        status: 400,
        body: { error: { code: 'invalid_parameter', message: 'steps too high for this model', param: 'steps', type: 'invalid_request_error' } },
      };
      await expectError(await post({ prompt: 'a red apple' }), 400, 'steps', 'invalid_parameter');
    });

    it('a 500 from the service is 502 backend_error, and nothing is stored', async () => {
      gpu.behaviour = { kind: 'status', status: 500, body: 'boom' };
      const response = await post({ prompt: 'a red apple' });
      await expectError(response, 502, null, 'backend_error');
      expect(await objectKeysOfTask(response.headers.get('x-task-id')!)).toEqual([]);
    });
  });

  describe('storage failure', () => {
    it('removes what was stored for the request and answers 500 storage_failed', async () => {
      let realPuts = 0;
      const failingBucket = {
        put: async (...args: Parameters<R2Bucket['put']>) => {
          if (String(args[0]).endsWith('/1.png')) {
            await new Promise((resolve) => setTimeout(resolve, 20)); // let 0.png land first
            throw new Error('R2 put failed (simulated)');
          }
          realPuts += 1;
          return env.IMAGES.put(...args);
        },
        delete: (keys: string | string[]) => env.IMAGES.delete(keys),
      } as unknown as R2Bucket;
      const testEnv: EdgeBindings = {
        API_KEYS: env.API_KEYS,
        IMAGES: failingBucket,
        RATE_LIMITER: env.RATE_LIMITER,
        DB: env.DB,
        GPU_SERVICE_URL: env.GPU_SERVICE_URL,
        GPU_SERVICE_TOKEN: env.GPU_SERVICE_TOKEN,
        DEFAULT_MODEL: env.DEFAULT_MODEL,
        LINK_TTL_SECONDS: env.LINK_TTL_SECONDS,
        LINK_SIGNING_SECRET: env.LINK_SIGNING_SECRET,
      };
      const response = await buildApp().request(
        '/v1/images/generations',
        {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
          body: JSON.stringify({ prompt: 'a red apple', n: 3 }),
        },
        testEnv,
      );
      await expectError(response, 500, null, 'storage_failed');
      expect(realPuts).toBe(2); // 0.png and 2.png really reached R2 ...
      expect(await objectKeysOfTask(response.headers.get('x-task-id')!)).toEqual([]); // ... and were removed
    });
  });

  describe('Hugging Face references', () => {
    it('an hf.co reference the GPU service does not list yet is sent as is (it downloads it), at SD 1.x size', async () => {
      const response = await post({ prompt: 'a red apple', model: 'hf.co/acme/tiny', response_format: 'b64_json' });
      expect(response.status).toBe(200);
      expect(gpu.jobs.at(-1)).toMatchObject({ model: 'hf.co/acme/tiny', width: 512, height: 512 });
    });

    it('only a key with the models:download scope ("*" does not imply it) marks its jobs download_any_repo', async () => {
      expect((await post({ prompt: 'a red apple', model: 'hf.co/acme/tiny', response_format: 'b64_json' })).status).toBe(200);
      expect(gpu.jobs.at(-1)!.download_any_repo).toBe(false);
      const admin = 'sk-test-images-admin';
      await seedApiKey(env.API_KEYS, { key: admin, name: 'images-admin', tenant: 'tenant-admin', scopes: ['*', 'models:download'] });
      const response = await exports.default.fetch(`${ORIGIN}/v1/images/generations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
        body: JSON.stringify({ prompt: 'a red apple', model: 'hf.co/other/repo', response_format: 'b64_json' }),
      });
      expect(response.status).toBe(200);
      expect(gpu.jobs.at(-1)).toMatchObject({ model: 'hf.co/other/repo', download_any_repo: true });
    });

    it("the GPU service's 403 for a repository outside HF_ALLOWED_REPOS reaches the client naming model", async () => {
      const message = 'model: "hf.co/other/repo" may not be downloaded: the repository "other/repo" matches none of HF_ALLOWED_REPOS (acme/*)';
      gpu.behaviour = { kind: 'status', status: 403, body: { error: { type: 'permission_error', code: 'model_download_forbidden', message, param: 'model' } } };
      const body = await expectError(await post({ prompt: 'a red apple', model: 'hf.co/other/repo' }), 403, 'model', 'model_download_forbidden');
      expect(body.error.message).toBe(message);
      // Any other 403 is still our service token's fault, not the caller's.
      gpu.behaviour = { kind: 'status', status: 403, body: { error: { type: 'permission_error', code: 'forbidden', message: 'no', param: null } } };
      expect((await post({ prompt: 'a red apple', model: 'hf.co/other/repo' })).status).toBe(502);
    });

    it('a malformed reference is a 400 naming model, and nothing is sent', async () => {
      await expectError(await post({ prompt: 'a red apple', model: 'hf.co/acme/tiny:' }), 400, 'model', 'invalid_model_reference');
      await expectError(await post({ prompt: 'a red apple', model: 'hf.co/acme' }), 400, 'model', 'invalid_model_reference');
      expect(gpu.jobs).toHaveLength(0);
    });
  });

  describe('a broken model', () => {
    it('is a 503 model_unavailable naming model, with the GPU service\'s reason, and no job is sent', async () => {
      const body = await expectError(await post({ prompt: 'a red apple', model: 'broken-model' }), 503, 'model', 'model_unavailable');
      expect(body.error.message).toContain('Unexpected token');
      expect(gpu.jobs).toHaveLength(0);
    });
  });

  describe('compute-unit budget', () => {
    it('charges steps × megapixels × images per request: a second 256² 10-step image in the minute is a 429', async () => {
      const key = `sk-test-cu-${crypto.randomUUID()}`;
      const record = await newApiKeyRecord(key, { name: 'cu-route', tenant: 'tenant-cu', limits: { compute_units_per_minute: 1 } });
      await env.API_KEYS.put(record.key_hash, JSON.stringify(record), { metadata: { name: record.name, tenant: record.tenant } });
      const call = () =>
        exports.default.fetch(`${ORIGIN}/v1/images/generations`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
          body: JSON.stringify({ prompt: 'a red apple', size: '256x256', sampling_steps: 10, response_format: 'b64_json' }),
        });
      const first = await call(); // 10 × 0.065536 MP = 0.655 units of 1
      expect(first.status).toBe(200);
      const second = await call();
      await expectError(second, 429, null, 'compute_unit_limit_exceeded');
      expect(Number(second.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(second.headers.get('x-ratelimit-limit')).toBe('1');
    });
  });
});

