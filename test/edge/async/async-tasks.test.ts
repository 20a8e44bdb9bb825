import { createExecutionContext, createMessageBatch, getQueueResult } from 'cloudflare:test';
import { env, exports } from 'cloudflare:workers';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AsyncModelList, AsyncTaskResult } from '@image-api/shared/api/async-tasks';
import type { ErrorBody } from '@image-api/shared/errors';
import { buildApp } from '../../../edge/src/app';
import { ModelCatalog } from '../../../edge/src/gpu/model-catalog';
import { decodeBase64, encodeBase64 } from '../../../edge/src/lib/base64';
import { asyncTaskConsumer, ASYNC_MESSAGE_MAX_DELIVERIES } from '../../../edge/src/queue/async-task-consumer';
import type { AsyncTaskMessage } from '../../../edge/src/queue/async-task-record';
import { ASYNC_TASK_MAX_ATTEMPTS } from '../../../edge/src/queue/retry-policy';
import { ASYNC_STALE_AFTER_MS } from '../../../edge/src/queue/task-lease';
import { verifyWebhookSignature } from '../../../edge/src/webhooks/webhook-signature';
import { seedApiKey } from '../helpers/api-keys';
import { solidPng } from '../helpers/png';
import { colourOfSeed, installFakeGpuStream, type FakeGpuStream } from './fake-gpu-stream';

const KEY = 'sk-async-tenant-a';
const OTHER_KEY = 'sk-async-tenant-b';
const ORIGIN = 'https://edge.test';
const WEBHOOK_SECRET = 'whsec-async-test';
const QUEUE = 'image-api-async-tasks';

const TXT2IMG = {
  model_name: 'tiny-analytic',
  prompt: 'a red apple',
  width: 256,
  height: 256,
  image_num: 2,
  steps: 6,
  guidance_scale: 7.5,
  sampler_name: 'Euler a',
  seed: 1234,
};

/** A Worker env whose Queue producer records messages instead of delivering them, plus the webhook secret. */
function harness(options: { webhookSecret?: string | null; failSend?: boolean } = {}) {
  const sent: AsyncTaskMessage[] = [];
  const webhooks: Request[] = [];
  const queue = {
    async send(body: AsyncTaskMessage) {
      if (options.failSend) throw new Error('queue down');
      sent.push(body);
    },
    async sendBatch(messages: Iterable<{ body: AsyncTaskMessage }>) {
      for (const message of messages) sent.push(message.body);
    },
  };
  const testEnv = {
    ...env,
    ASYNC_TASKS: queue,
    ...(options.webhookSecret === null ? {} : { WEBHOOK_SIGNING_SECRET: options.webhookSecret ?? WEBHOOK_SECRET }),
  } as unknown as typeof env;
  const app = buildApp({ catalog: new ModelCatalog() });
  const consumer = asyncTaskConsumer({
    catalog: new ModelCatalog(),
    sleep: async () => {},
    webhookFetch: (async (input: RequestInfo | URL, init?: RequestInit) => {
      webhooks.push(new Request(input, init));
      return new Response(null, { status: 204 });
    }) as typeof fetch,
  });

  async function call(path: string, init: RequestInit = {}, key = KEY): Promise<Response> {
    const headers = new Headers(init.headers);
    if (key) headers.set('authorization', `Bearer ${key}`);
    return app.fetch(new Request(`${ORIGIN}${path}`, { ...init, headers }), testEnv, createExecutionContext());
  }
  async function submit(endpoint: 'txt2img' | 'img2img' | 'inpainting', request: Record<string, unknown>, extra: Record<string, unknown> = {}, key = KEY) {
    return call(`/v3/async/${endpoint}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ extra, request }) }, key);
  }
  async function submitOk(endpoint: 'txt2img' | 'img2img' | 'inpainting', request: Record<string, unknown>, extra: Record<string, unknown> = {}) {
    const response = await submit(endpoint, request, extra);
    expect(response.status, await response.clone().text()).toBe(200);
    const body = (await response.json()) as { task_id: string };
    expect(response.headers.get('x-task-id')).toBe(body.task_id);
    return body.task_id;
  }
  async function result(taskId: string, key = KEY): Promise<AsyncTaskResult> {
    const response = await call(`/v3/async/task-result?task_id=${encodeURIComponent(taskId)}`, {}, key);
    expect(response.status, await response.clone().text()).toBe(200);
    return (await response.json()) as AsyncTaskResult;
  }
  /** Deliver one message for `taskId` to the consumer as Queues would on delivery `attempts`. */
  async function consume(taskId: string, attempts = 1): Promise<QueueResult> {
    const batch = createMessageBatch<AsyncTaskMessage>(QUEUE, [{ id: `msg-${taskId}-${attempts}`, timestamp: new Date(), attempts, body: { task_id: taskId } }]);
    // The pool's QueueResult drops delaySeconds, so record them from the retry calls themselves.
    const retries: Array<{ msgId: string; delaySeconds?: number }> = [];
    for (const message of batch.messages) {
      const retry = message.retry.bind(message);
      (message as { retry: Message['retry'] }).retry = (options) => {
        retries.push({ msgId: message.id, delaySeconds: options?.delaySeconds });
        retry(options);
      };
    }
    const ctx = createExecutionContext();
    await consumer(batch as MessageBatch<unknown>, testEnv, ctx);
    const result = (await getQueueResult(batch, ctx)) as QueueResult;
    expect(result.retryMessages.map((m) => m.msgId)).toEqual(retries.map((m) => m.msgId));
    return { ...result, retryMessages: retries };
  }
  return { sent, webhooks, call, submit, submitOk, result, consume, env: testEnv };
}

/** What `getQueueResult` reports for a batch (workers-types declares it only in its experimental set). */
interface QueueResult {
  outcome: string;
  ackAll: boolean;
  retryBatch: { retry: boolean; delaySeconds?: number };
  explicitAcks: string[];
  retryMessages: Array<{ msgId: string; delaySeconds?: number }>;
}

async function expectError(response: Response, status: number, param: string | null, code?: string): Promise<ErrorBody> {
  const body = (await response.json()) as ErrorBody;
  expect(response.status, JSON.stringify(body)).toBe(status);
  expect(body.error.param).toBe(param);
  if (code) expect(body.error.code).toBe(code);
  return body;
}

describe('async task API (/v3)', () => {
  let gpu: FakeGpuStream;
  beforeAll(async () => {
    await seedApiKey(env.API_KEYS, { key: KEY, name: 'async-a', tenant: 'tenant-a' });
    await seedApiKey(env.API_KEYS, { key: OTHER_KEY, name: 'async-b', tenant: 'tenant-b' });
  });
  beforeEach(() => {
    gpu = installFakeGpuStream(env.GPU_SERVICE_URL, env.GPU_SERVICE_TOKEN);
  });
  afterEach(() => gpu.restore());

  describe('submit validation: 400 naming the field, nothing queued', () => {
    it.each([
      ['an empty prompt', { prompt: '' }, 'request.prompt'],
      ['a prompt over 1024 characters', { prompt: 'x'.repeat(1025) }, 'request.prompt'],
      ['a negative prompt over 1024 characters', { negative_prompt: 'x'.repeat(1025) }, 'request.negative_prompt'],
      ['width below 128', { width: 120 }, 'request.width'],
      ['height above 2048', { height: 2056 }, 'request.height'],
      ['width not a multiple of 8', { width: 250 }, 'request.width'],
      ['image_num 0', { image_num: 0 }, 'request.image_num'],
      ['image_num 9', { image_num: 9 }, 'request.image_num'],
      ['steps 0', { steps: 0 }, 'request.steps'],
      ['steps 101', { steps: 101 }, 'request.steps'],
      ['guidance_scale below 1', { guidance_scale: 0.5 }, 'request.guidance_scale'],
      ['guidance_scale above 30', { guidance_scale: 31 }, 'request.guidance_scale'],
      ['seed below −1', { seed: -2 }, 'request.seed'],
      ['six LoRAs', { loras: Array.from({ length: 6 }, () => ({ model_name: 'detail-lora', strength: 1 })) }, 'request.loras'],
      ['six embeddings', { embeddings: Array.from({ length: 6 }, () => ({ model_name: 'x' })) }, 'request.embeddings'],
      ['clip_skip 13', { clip_skip: 13 }, 'request.clip_skip'],
      ['refiner switch_at above 1', { refiner: { switch_at: 1.5 } }, 'request.refiner.switch_at'],
      ['an unknown sampler', { sampler_name: 'dpmpp_2m' }, 'request.sampler_name'],
      ['an unknown LoRA', { loras: [{ model_name: 'missing-lora', strength: 0.7 }] }, 'request.loras.0.model_name'],
      ['an unknown LoRA in a prompt tag', { prompt: 'a red apple <lora:missing-lora:0.7>' }, 'request.prompt'],
      ['an unknown embedding', { embeddings: [{ model_name: 'missing-embedding' }] }, 'request.embeddings.0.model_name'],
      ['a LoRA strength above 4', { loras: [{ model_name: 'detail-lora', strength: 4.5 }] }, 'request.loras.0.strength'],
      ['an unknown VAE', { sd_vae: 'missing-vae' }, 'request.sd_vae'],
      ['restore_faces (no face detector or restorer listed)', { restore_faces: true }, 'request.restore_faces'],
      ['a refiner on a non-SDXL base', { refiner: { switch_at: 0.7 } }, 'request.refiner'],
      ['a transparent background on a non-SDXL model', { enable_transparent_background: true }, 'request.enable_transparent_background'],
      ['more pixels than the model allows', { width: 1024, height: 1024 }, 'request.width'],
    ])('%s', async (_why, change, param) => {
      const h = harness();
      await expectError(await h.submit('txt2img', { ...TXT2IMG, ...change }), 400, param);
      expect(h.sent).toHaveLength(0);
      expect(gpu.jobs).toHaveLength(0);
    });

    it('a missing required field', async () => {
      const { steps: _steps, ...withoutSteps } = TXT2IMG;
      await expectError(await harness().submit('txt2img', withoutSteps), 400, 'request.steps', 'missing_parameter');
    });

    it('several missing required fields are all named in one answer', async () => {
      const body = await expectError(await harness().submit('txt2img', { prompt: 'a red apple' }), 400, 'request.model_name', 'missing_parameter');
      expect(body.error.message).toBe(
        'Missing required fields: request.model_name, request.width, request.height, request.image_num.',
      );
    });

    it('an unknown model is 404 model_not_found naming request.model_name', async () => {
      const body = await expectError(await harness().submit('txt2img', { ...TXT2IMG, model_name: 'nope' }), 404, 'request.model_name', 'model_not_found');
      expect(body.error.message).toContain('/v3/model');
    });

    it('an hf.co repository outside HF_ALLOWED_REPOS is a 403 at submit naming request.model_name, as the GPU service words it; nothing queued', async () => {
      for (const endpoint of ['txt2img', 'img2img'] as const) {
        const h = harness();
        const image = endpoint === 'img2img' ? { image_base64: encodeBase64(await solidPng(256, 256, [10, 20, 30])) } : {};
        const body = await expectError(await h.submit(endpoint, { ...TXT2IMG, ...image, model_name: 'hf.co/other/repo' }), 403, 'request.model_name', 'model_download_forbidden');
        expect(body.error.type).toBe('permission_error');
        expect(body.error.message).toBe(
          'request.model_name: "hf.co/other/repo" may not be downloaded: the repository "other/repo" matches none of HF_ALLOWED_REPOS (acme/*); only an API key with the models:download scope may download other repositories',
        );
        expect(h.sent).toHaveLength(0);
      }
      expect(gpu.jobs).toHaveLength(0);
    });

    it('an allowed hf.co repository is queued for a plain key; any repository for a key with the models:download scope', async () => {
      const admin = 'sk-async-downloader';
      await seedApiKey(env.API_KEYS, { key: admin, name: 'async-downloader', tenant: 'tenant-a', scopes: ['*', 'models:download'] });
      const h = harness();
      const allowed = await h.submitOk('txt2img', { ...TXT2IMG, model_name: 'hf.co/ACME/tiny' }); // the Hub's names are case-insensitive
      expect((await h.submit('txt2img', { ...TXT2IMG, model_name: 'hf.co/other/repo' }, {}, admin)).status).toBe(200);
      expect(h.sent).toHaveLength(2);
      await h.consume(allowed);
      await h.consume(h.sent[1].task_id);
      expect(gpu.jobs.map((job) => [job.model, job.download_any_repo])).toEqual([
        ['hf.co/ACME/tiny', false],
        ['hf.co/other/repo', true],
      ]);
    });

    it('response_image_type outside png|jpeg|webp', async () => {
      await expectError(await harness().submit('txt2img', TXT2IMG, { response_image_type: 'gif' }), 400, 'extra.response_image_type');
    });

    it.each([
      ['loopback', 'https://127.0.0.1/hook'],
      ['cloud metadata', 'https://169.254.169.254/latest'],
      ['a private network', 'https://10.0.0.8/hook'],
      ['localhost', 'https://localhost/hook'],
      ['plain http', 'http://hooks.example.com/hook'],
    ])('a webhook URL to %s', async (_why, url) => {
      const h = harness();
      await expectError(await h.submit('txt2img', TXT2IMG, { webhook: { url } }), 400, 'extra.webhook.url', 'invalid_webhook_url');
      expect(h.sent).toHaveLength(0);
    });

    it('a webhook when the deployment has no WEBHOOK_SIGNING_SECRET', async () => {
      const h = harness({ webhookSecret: null });
      await expectError(await h.submit('txt2img', TXT2IMG, { webhook: { url: 'https://hooks.example.com/x' } }), 400, 'extra.webhook');
    });

    it('img2img without an image, with both, or with a non-image', async () => {
      const h = harness();
      await expectError(await h.submit('img2img', TXT2IMG), 400, 'request.image_base64', 'missing_parameter');
      const png = encodeBase64(await solidPng(256, 256, [10, 20, 30]));
      await expectError(await h.submit('img2img', { ...TXT2IMG, image_base64: png, image_url: 'https://img.example.com/a.png' }), 400, 'request.image_base64');
      await expectError(await h.submit('img2img', { ...TXT2IMG, image_base64: btoa('GIF89a not really') }), 415, 'request.image_base64');
      await expectError(await h.submit('img2img', { ...TXT2IMG, image_url: 'http://127.0.0.1/a.png' }), 400, 'request.image_url');
      await expectError(await h.submit('img2img', { ...TXT2IMG, image_base64: png, strength: 1.5 }), 400, 'request.strength');
      expect(h.sent).toHaveLength(0);
    });

    it('inpainting with a mask of another size or one that covers nothing', async () => {
      const h = harness();
      const image = encodeBase64(await solidPng(256, 256, [10, 20, 30]));
      const small = encodeBase64(await solidPng(128, 128, [255, 255, 255]));
      const black = encodeBase64(await solidPng(256, 256, [0, 0, 0]));
      await expectError(await h.submit('inpainting', { ...TXT2IMG, image_base64: image }), 400, 'request.mask_image_base64', 'missing_parameter');
      const wrongSize = await expectError(await h.submit('inpainting', { ...TXT2IMG, image_base64: image, mask_image_base64: small }), 400, 'request.mask_image_base64');
      expect(wrongSize.error.message).toMatch(/same size/);
      const empty = await expectError(await h.submit('inpainting', { ...TXT2IMG, image_base64: image, mask_image_base64: black }), 400, 'request.mask_image_base64');
      expect(empty.error.message).toMatch(/covers nothing/);
      expect(h.sent).toHaveLength(0);
    });

    it('a task_id query that is missing', async () => {
      await expectError(await harness().call('/v3/async/task-result'), 400, 'task_id', 'missing_parameter');
    });

    it('needs an API key', async () => {
      const response = await harness().call('/v3/async/txt2img', { method: 'POST', body: '{}' }, '');
      expect(response.status).toBe(401);
    });
  });

  describe('submit → Queue consumer → task-result', () => {
    it('txt2img: QUEUED at once, SUCCEED after the consumer ran, with signed image links and the seed', async () => {
      const h = harness();
      const taskId = await h.submitOk('txt2img', { ...TXT2IMG, sampler_name: 'DPM++ 2M Karras', negative_prompt: 'blurry' });
      expect(h.sent).toEqual([{ task_id: taskId }]);
      expect(gpu.jobs).toHaveLength(0);
      const queued = await h.result(taskId);
      expect(queued.task).toMatchObject({ task_id: taskId, task_type: 'TXT_TO_IMG', status: 'TASK_STATUS_QUEUED', progress_percent: 0, reason: '' });
      expect(queued.images).toEqual([]);
      expect(queued.extra.seed).toBe(1234);

      const outcome = await h.consume(taskId);
      expect(outcome.explicitAcks).toEqual([`msg-${taskId}-1`]);
      expect(outcome.retryMessages).toEqual([]);
      expect(gpu.jobs).toHaveLength(1);
      expect(gpu.jobs[0]).toMatchObject({
        id: taskId, tenant: 'tenant-a', model: 'tiny-analytic', mode: 'txt2img', prompt: 'a red apple', negative_prompt: 'blurry',
        width: 256, height: 256, batch_size: 2, seed: 1234, steps: 6, cfg_scale: 7.5, sampler: 'dpmpp_2m', scheduler: 'karras',
      });

      const done = await h.result(taskId);
      expect(done.task).toMatchObject({ status: 'TASK_STATUS_SUCCEED', progress_percent: 100, eta: 0, reason: '' });
      expect(done.extra.seed).toBe(1234);
      expect(done.extra.debug_info.attempts).toBe(1);
      expect(done.extra.debug_info.receipt).toMatchObject({ model: 'tiny-analytic', model_hash: 'sha256:fake', seeds: [1234, 1235], sampler: 'dpmpp_2m' });
      expect(done.images).toHaveLength(2);
      for (const [i, image] of done.images.entries()) {
        expect(image).toMatchObject({ image_type: 'png', image_url_ttl: 3600, seed: 1234 + i });
        expect(image.image_url.startsWith(`${ORIGIN}/v1/files/tenant-a/`)).toBe(true);
        const file = await h.call(new URL(image.image_url).pathname + new URL(image.image_url).search, {}, '');
        expect(file.status).toBe(200);
        expect(new Uint8Array(await file.arrayBuffer())).toEqual(await solidPng(256, 256, colourOfSeed(1234 + i)));
      }
    });

    it('seed −1 is replaced by a concrete seed at submit, reported in extra.seed', async () => {
      const h = harness();
      const taskId = await h.submitOk('txt2img', { ...TXT2IMG, seed: -1, image_num: 1 });
      const before = await h.result(taskId);
      expect(before.extra.seed).toBeGreaterThanOrEqual(0);
      await h.consume(taskId);
      expect(gpu.jobs[0].seed).toBe(before.extra.seed);
      expect((await h.result(taskId)).images[0].seed).toBe(before.extra.seed);
    });

    it('img2img sends the stored image, A1111 strength semantics and jpeg output', async () => {
      const h = harness();
      const source = await solidPng(256, 256, [0, 128, 255]);
      const taskId = await h.submitOk('img2img', { ...TXT2IMG, image_num: 1, image_base64: encodeBase64(source), strength: 0.4 }, { response_image_type: 'jpeg' });
      const inputs = (await env.IMAGES.list({ prefix: 'tenant-a/' })).objects.map((o) => o.key).filter((k) => k.includes(`/${taskId}/input-`));
      expect(inputs).toHaveLength(1);
      await h.consume(taskId);
      expect(gpu.jobs[0]).toMatchObject({ mode: 'img2img', strength: 0.4, strength_schedule: 'scaled', output: { format: 'jpeg' } });
      expect(decodeBase64(gpu.jobs[0].init_image!)).toEqual(source);
      const done = await h.result(taskId);
      expect(done.task.task_type).toBe('IMG_TO_IMG');
      expect(done.images[0].image_type).toBe('jpeg');
    });

    it('inpainting sends image and mask with white = repaint', async () => {
      const h = harness();
      const image = await solidPng(256, 256, [0, 128, 255]);
      const mask = await solidPng(256, 256, [255, 255, 255]);
      const taskId = await h.submitOk('inpainting', { ...TXT2IMG, image_num: 1, image_base64: encodeBase64(image), mask_image_base64: encodeBase64(mask) });
      await h.consume(taskId);
      expect(gpu.jobs[0]).toMatchObject({ mode: 'inpaint', mask_mode: 'white' });
      expect(decodeBase64(gpu.jobs[0].mask!)).toEqual(mask);
      expect(decodeBase64(gpu.jobs[0].init_image!)).toEqual(image);
      expect((await h.result(taskId)).task).toMatchObject({ task_type: 'INPAINTING', status: 'TASK_STATUS_SUCCEED' });
    });

    it('the real Queue delivers the message to the Worker\'s queue handler', async () => {
      const post = await exports.default.fetch(`${ORIGIN}/v3/async/txt2img`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
        body: JSON.stringify({ request: { ...TXT2IMG, image_num: 1 } }),
      });
      expect(post.status).toBe(200);
      const { task_id: taskId } = (await post.json()) as { task_id: string };
      let status = '';
      for (let i = 0; i < 100 && status !== 'TASK_STATUS_SUCCEED'; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        const response = await exports.default.fetch(`${ORIGIN}/v3/async/task-result?task_id=${taskId}`, { headers: { authorization: `Bearer ${KEY}` } });
        status = ((await response.json()) as AsyncTaskResult).task.status;
      }
      expect(status).toBe('TASK_STATUS_SUCCEED');
    });

    it('a failing queue send refuses the task with 503 and leaves it FAILED, not QUEUED forever', async () => {
      const h = harness({ failSend: true });
      const response = await h.submit('txt2img', TXT2IMG);
      await expectError(response, 503, null, 'queue_unavailable');
      const taskId = response.headers.get('x-task-id')!;
      expect((await h.result(taskId)).task.status).toBe('TASK_STATUS_FAILED');
    });
  });

  describe('retries and failures', () => {
    it('a busy GPU service (503 queue_full) is retried after its Retry-After, then succeeds', async () => {
      const h = harness();
      gpu.script = [{ kind: 'status', status: 503, body: { error: { code: 'queue_full', message: 'The queue is full.', param: null, type: 'server_error' } }, headers: { 'retry-after': '30' } }];
      const taskId = await h.submitOk('txt2img', TXT2IMG);
      const first = await h.consume(taskId, 1);
      expect(first.retryMessages).toEqual([{ msgId: `msg-${taskId}-1`, delaySeconds: 30 }]);
      const waiting = await h.result(taskId);
      expect(waiting.task.status).toBe('TASK_STATUS_QUEUED');
      expect(waiting.task.reason).toContain('queue is full');

      const second = await h.consume(taskId, 2);
      expect(second.explicitAcks).toHaveLength(1);
      const done = await h.result(taskId);
      expect(done.task.status).toBe('TASK_STATUS_SUCCEED');
      expect(done.extra.debug_info.attempts).toBe(2);
      expect(done.images).toHaveLength(2);
    });

    it('an unreachable GPU service is retried with growing delays and ends FAILED with a reason', async () => {
      const h = harness();
      gpu.fallback = { kind: 'refused' };
      const taskId = await h.submitOk('txt2img', TXT2IMG);
      const delays: number[] = [];
      for (let delivery = 1; delivery <= ASYNC_TASK_MAX_ATTEMPTS; delivery++) {
        const outcome = await h.consume(taskId, delivery);
        if (delivery < ASYNC_TASK_MAX_ATTEMPTS) {
          expect(outcome.retryMessages).toHaveLength(1);
          delays.push(outcome.retryMessages[0].delaySeconds!);
          expect((await h.result(taskId)).task.status).toBe('TASK_STATUS_QUEUED');
        } else {
          expect(outcome.retryMessages).toEqual([]);
          expect(outcome.explicitAcks).toHaveLength(1);
        }
      }
      expect(delays).toEqual([10, 20, 40, 80, 160]);
      const failed = await h.result(taskId);
      expect(failed.task.status).toBe('TASK_STATUS_FAILED');
      expect(failed.task.reason).toMatch(/unreachable/);
      expect(failed.extra.debug_info.attempts).toBe(ASYNC_TASK_MAX_ATTEMPTS);
      expect(failed.images).toEqual([]);
    });

    it('a job the GPU service refuses (400) fails at once, without retries', async () => {
      const h = harness();
      gpu.script = [{ kind: 'status', status: 400, body: { error: { code: 'invalid_parameter', message: 'clip_skip 2 needs hidden states', param: 'clip_skip', type: 'invalid_request_error' } } }];
      const taskId = await h.submitOk('txt2img', { ...TXT2IMG, clip_skip: 2 });
      const outcome = await h.consume(taskId);
      expect(outcome.retryMessages).toEqual([]);
      const failed = await h.result(taskId);
      expect(failed.task.status).toBe('TASK_STATUS_FAILED');
      expect(failed.task.reason).toContain('clip_skip');
    });

    it('loras and sd_vae reach the job; a GPU refusal of one names the request field in the failed task', async () => {
      const h = harness();
      const request = { ...TXT2IMG, image_num: 1, prompt: 'a red apple <lora:detail-lora:0.4>', loras: [{ model_name: 'detail-lora', strength: 0.9 }], sd_vae: 'vae-ft-mse' };
      const ok = await h.submitOk('txt2img', request);
      await h.consume(ok);
      expect(gpu.jobs[0]).toMatchObject({ prompt: 'a red apple <lora:detail-lora:0.4>', loras: [{ name: 'detail-lora', strength: 0.9 }], vae: 'vae-ft-mse' });
      expect((await h.result(ok)).task.status).toBe('TASK_STATUS_SUCCEED');

      gpu.script = [{ kind: 'status', status: 400, body: { error: { code: 'invalid_request', message: 'LoRA "detail-lora" matches no layer of this model', param: 'loras[0].name', type: 'invalid_request_error' } } }];
      const refused = await h.submitOk('txt2img', request);
      await h.consume(refused);
      const failed = await h.result(refused);
      expect(failed.task.status).toBe('TASK_STATUS_FAILED');
      expect(failed.task.reason).toContain('matches no layer');
      const task = (await (await h.call(`/v1/tasks/${refused}`)).json()) as { error: { param: string | null } };
      expect(task.error.param).toBe('request.loras.0.model_name');
    });

    it("the GPU service's refusal of an input image names request.image_base64, not the job's init_image (issue 10 item 6)", async () => {
      const h = harness();
      const refusal = { code: 'invalid_request', message: 'init_image is not a decodable PNG, JPEG or WebP image', param: 'init_image', type: 'invalid_request_error' };
      gpu.script = [{ kind: 'status', status: 400, body: { error: refusal } }];
      const image = encodeBase64(await solidPng(256, 256, [10, 20, 30]));
      const refused = await h.submitOk('img2img', { ...TXT2IMG, image_num: 1, image_base64: image });
      await h.consume(refused);
      expect((await h.result(refused)).task.status).toBe('TASK_STATUS_FAILED');
      const task = (await (await h.call(`/v1/tasks/${refused}`)).json()) as { error: { param: string | null } };
      expect(task.error.param).toBe('request.image_base64');
    });

    it('a GPU backend that dies mid-job is retried, and the retry succeeds', async () => {
      const h = harness();
      gpu.script = [{ kind: 'die' }];
      const taskId = await h.submitOk('txt2img', TXT2IMG);
      const first = await h.consume(taskId, 1);
      expect(first.retryMessages).toHaveLength(1);
      const between = await h.result(taskId);
      expect(between.task.status).toBe('TASK_STATUS_QUEUED');
      expect(between.task.reason).toMatch(/event stream|lost the job/);
      await h.consume(taskId, 2);
      expect((await h.result(taskId)).task.status).toBe('TASK_STATUS_SUCCEED');
      expect(gpu.jobs.map((job) => job.id)).toEqual([taskId, taskId]);
    });

    it('a GPU backend that always dies mid-job ends FAILED with a reason, never PROCESSING', async () => {
      const h = harness();
      gpu.fallback = { kind: 'die' };
      const taskId = await h.submitOk('txt2img', TXT2IMG);
      for (let delivery = 1; delivery <= ASYNC_TASK_MAX_ATTEMPTS; delivery++) {
        await h.consume(taskId, delivery);
        expect((await h.result(taskId)).task.status).not.toBe('TASK_STATUS_PROCESSING');
      }
      const failed = await h.result(taskId);
      expect(failed.task.status).toBe('TASK_STATUS_FAILED');
      expect(failed.task.reason).toMatch(/event stream|lost the job/);
    });

    it('the last delivery Queues makes ends the task instead of letting the message drop', async () => {
      const h = harness();
      gpu.fallback = { kind: 'refused' };
      const taskId = await h.submitOk('txt2img', TXT2IMG);
      const outcome = await h.consume(taskId, ASYNC_MESSAGE_MAX_DELIVERIES);
      expect(outcome.retryMessages).toEqual([]);
      expect((await h.result(taskId)).task.status).toBe('TASK_STATUS_FAILED');
    });

    it('a duplicate delivery while another consumer runs the task is looked at later, not run twice', async () => {
      const h = harness();
      const taskId = await h.submitOk('txt2img', TXT2IMG);
      await env.DB.prepare("UPDATE tasks SET status = 'PROCESSING', updated_at = ? WHERE id = ?").bind(Date.now(), taskId).run();
      const outcome = await h.consume(taskId, 1);
      expect(outcome.retryMessages).toEqual([{ msgId: `msg-${taskId}-1`, delaySeconds: 60 }]);
      expect(gpu.jobs).toHaveLength(0);
    });

    it('a PROCESSING task whose consumer died is re-queued when read, and FAILED once no attempts are left', async () => {
      const h = harness();
      const taskId = await h.submitOk('txt2img', TXT2IMG);
      const stale = Date.now() - ASYNC_STALE_AFTER_MS - 1000;
      await env.DB.prepare("UPDATE tasks SET status = 'PROCESSING', attempts = 1, updated_at = ? WHERE id = ?").bind(stale, taskId).run();
      h.sent.length = 0;
      const requeued = await h.result(taskId);
      expect(requeued.task.status).toBe('TASK_STATUS_QUEUED');
      expect(requeued.task.reason).toMatch(/stopped responding/);
      expect(h.sent).toEqual([{ task_id: taskId }]);

      await env.DB.prepare("UPDATE tasks SET status = 'PROCESSING', attempts = ?, updated_at = ? WHERE id = ?").bind(ASYNC_TASK_MAX_ATTEMPTS, stale, taskId).run();
      const failed = await h.result(taskId);
      expect(failed.task.status).toBe('TASK_STATUS_FAILED');
      expect(failed.task.reason).toMatch(/no attempts are left/);
    });

    it('a stale PROCESSING task is taken over by the next delivery', async () => {
      const h = harness();
      const taskId = await h.submitOk('txt2img', TXT2IMG);
      await env.DB.prepare("UPDATE tasks SET status = 'PROCESSING', updated_at = ? WHERE id = ?").bind(Date.now() - ASYNC_STALE_AFTER_MS - 1000, taskId).run();
      await h.consume(taskId, 2);
      expect((await h.result(taskId)).task.status).toBe('TASK_STATUS_SUCCEED');
    });
  });

  describe('webhooks', () => {
    it('POSTs the task result with a signature the receiver can verify when the task ends', async () => {
      const h = harness();
      const taskId = await h.submitOk('txt2img', TXT2IMG, { webhook: { url: 'https://hooks.example.com/image-done' } });
      await h.consume(taskId);
      expect(h.webhooks).toHaveLength(1);
      const request = h.webhooks[0];
      expect(request.url).toBe('https://hooks.example.com/image-done');
      expect(request.headers.get('x-webhook-id')).toBe(`${taskId}:TASK_STATUS_SUCCEED`);
      const body = await request.text();
      const payload = JSON.parse(body) as AsyncTaskResult;
      expect(payload.task).toMatchObject({ task_id: taskId, status: 'TASK_STATUS_SUCCEED' });
      expect(payload.images).toHaveLength(2);
      expect(payload.images[0].image_url.startsWith(`${ORIGIN}/v1/files/`)).toBe(true);
      const header = request.headers.get('x-webhook-signature');
      expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
      const nowSeconds = Date.now() / 1000;
      expect((await verifyWebhookSignature({ header, body, secret: WEBHOOK_SECRET, nowSeconds })).ok).toBe(true);
      expect(await verifyWebhookSignature({ header, body, secret: 'not-the-secret', nowSeconds })).toEqual({ ok: false, reason: 'mismatch' });
      expect(await verifyWebhookSignature({ header, body: body.replace('SUCCEED', 'FAILED'), secret: WEBHOOK_SECRET, nowSeconds })).toEqual({ ok: false, reason: 'mismatch' });
    });

    it('is sent once for a failed task too, and not while it is retried', async () => {
      const h = harness();
      gpu.script = [{ kind: 'refused' }, { kind: 'status', status: 404, body: { error: { code: 'model_not_found', message: 'gone', param: 'model', type: 'not_found_error' } } }];
      const taskId = await h.submitOk('txt2img', TXT2IMG, { webhook: { url: 'https://hooks.example.com/x' } });
      await h.consume(taskId, 1);
      expect(h.webhooks).toHaveLength(0);
      await h.consume(taskId, 2);
      expect(h.webhooks).toHaveLength(1);
      expect(((await h.webhooks[0].json()) as AsyncTaskResult).task).toMatchObject({ status: 'TASK_STATUS_FAILED', reason: 'gone' });
    });
  });

  describe('tenant isolation', () => {
    it('another key\'s task and an unknown id are 404', async () => {
      const h = harness();
      const taskId = await h.submitOk('txt2img', TXT2IMG);
      await h.consume(taskId);
      await expectError(await h.call(`/v3/async/task-result?task_id=${taskId}`, {}, OTHER_KEY), 404, 'task_id', 'task_not_found');
      await expectError(await h.call('/v3/async/task-result?task_id=does-not-exist'), 404, 'task_id', 'task_not_found');
    });
  });

  describe('GET /v3/model', () => {
    it.each([
      ['checkpoint', ['tiny-analytic', 'xl-base']],
      ['lora', ['detail-lora']],
      ['vae', ['vae-ft-mse']],
      ['textualinversion', []],
      ['lora,vae', ['detail-lora', 'vae-ft-mse']],
    ])('filter.types=%s', async (types, names) => {
      const response = await harness().call(`/v3/model?filter.types=${types}`);
      expect(response.status).toBe(200);
      const body = (await response.json()) as AsyncModelList;
      expect(body.models.map((model) => model.sd_name)).toEqual(names);
    });

    it('lists every kind without a filter, in Novita\'s shape', async () => {
      const body = (await (await harness().call('/v3/model')).json()) as AsyncModelList;
      expect(body.models).toHaveLength(4);
      expect(body.models[0]).toEqual({
        id: 'tiny-analytic', name: 'tiny-analytic', sd_name: 'tiny-analytic', type: 'checkpoint', status: 1, base_model: 'SD 1.5',
        capabilities: ['txt2img', 'img2img', 'inpaint'], native_size: [256, 256], max_pixels: 512 * 512,
      });
      expect(body.models[1].base_model).toBe('SDXL');
    });

    it('an unknown type is a 400 naming filter.types; the post-processing kinds are types', async () => {
      await expectError(await harness().call('/v3/model?filter.types=hypernetwork'), 400, 'filter.types');
      const body = (await (await harness().call('/v3/model?filter.types=matting,upscaler,facerestore')).json()) as AsyncModelList;
      expect(body.models).toEqual([]);
    });
  });
});
