import { createExecutionContext, createMessageBatch, getQueueResult } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ApiKeyLimits } from '@image-api/shared/api/api-key';
import type { AsyncTaskResult } from '@image-api/shared/api/async-tasks';
import type { ErrorBody } from '@image-api/shared/errors';
import { buildApp } from '../../../edge/src/app';
import { ModelCatalog } from '../../../edge/src/gpu/model-catalog';
import { asyncTaskConsumer } from '../../../edge/src/queue/async-task-consumer';
import type { AsyncTaskMessage } from '../../../edge/src/queue/async-task-record';
import { seedApiKey } from '../helpers/api-keys';
import { installFakeGpuStream, type FakeGpuStream } from './fake-gpu-stream';

const ORIGIN = 'https://edge.test';
const QUEUE = 'image-api-async-tasks';
const TXT2IMG = {
  model_name: 'tiny-analytic',
  prompt: 'a red apple',
  width: 256,
  height: 256,
  image_num: 1,
  steps: 4,
  guidance_scale: 7.5,
  sampler_name: 'Euler a',
  seed: 99,
};

/** A fresh key with `limits`, the edge app and the Queue consumer; Queue sends are recorded, not delivered. */
async function harness(limits: ApiKeyLimits) {
  const key = `sk-test-async-limits-${crypto.randomUUID()}`;
  const keyHash = await seedApiKey(env.API_KEYS, { key, name: 'limits', tenant: 'tenant-q', limits });
  const sent: Array<{ body: AsyncTaskMessage; delaySeconds?: number }> = [];
  const queue = {
    async send(body: AsyncTaskMessage, options?: { delaySeconds?: number }) {
      sent.push({ body, delaySeconds: options?.delaySeconds });
    },
  };
  const testEnv = { ...env, ASYNC_TASKS: queue } as unknown as typeof env;
  const app = buildApp({ catalog: new ModelCatalog() });
  const consumer = asyncTaskConsumer({ catalog: new ModelCatalog(), sleep: async () => {} });
  const call = (path: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${key}`);
    return app.fetch(new Request(`${ORIGIN}${path}`, { ...init, headers }), testEnv, createExecutionContext());
  };
  const submit = (request: Record<string, unknown> = {}) =>
    call('/v3/async/txt2img', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ extra: {}, request: { ...TXT2IMG, ...request } }) });
  const submitOk = async (request: Record<string, unknown> = {}) => {
    const response = await submit(request);
    expect(response.status, await response.clone().text()).toBe(200);
    return ((await response.json()) as { task_id: string }).task_id;
  };
  const status = async (taskId: string) => {
    const response = await call(`/v3/async/task-result?task_id=${taskId}`);
    return ((await response.json()) as AsyncTaskResult).task;
  };
  /** Deliver one message for `taskId` (delivery 1); returns whether it was acked or retried. */
  const consume = async (taskId: string) => {
    const batch = createMessageBatch<AsyncTaskMessage>(QUEUE, [{ id: `msg-${crypto.randomUUID()}`, timestamp: new Date(), attempts: 1, body: { task_id: taskId } }]);
    const ctx = createExecutionContext();
    await consumer(batch as MessageBatch<unknown>, testEnv, ctx);
    const result = (await getQueueResult(batch, ctx)) as { explicitAcks: string[]; retryMessages: unknown[] };
    return { acked: result.explicitAcks.length === 1, retried: result.retryMessages.length === 1 };
  };
  const limiter = env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(keyHash));
  return { call, submit, submitOk, status, consume, sent, limiter };
}

describe('async tasks under the key\'s limits', () => {
  let gpu: FakeGpuStream;
  beforeEach(() => {
    gpu = installFakeGpuStream(env.GPU_SERVICE_URL, env.GPU_SERVICE_TOKEN);
  });
  afterEach(() => gpu.restore());

  it('concurrency 2: six simultaneous submits are all accepted and wait in the Queue (no 429 while nothing runs)', async () => {
    const h = await harness({ concurrency: 2 });
    const responses = await Promise.all(Array.from({ length: 6 }, () => h.submit()));
    const statuses = responses.map((response) => response.status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200]);
    expect(h.sent).toHaveLength(6);
  });

  it('the consumer runs a task only while the key runs fewer jobs than its concurrency; over it the task stays QUEUED and comes back later', async () => {
    const h = await harness({ concurrency: 1 });
    // A sync request of the same key is running: it holds the key's only running slot.
    const sync = await h.limiter.acquire({ limits: { concurrency: 1 }, images: 1, lease_id: 'a-running-sync-request' });
    expect(sync.allowed).toBe(true);
    const taskId = await h.submitOk();
    h.sent.length = 0;

    const held = await h.consume(taskId);
    expect(held).toEqual({ acked: true, retried: false });
    expect(gpu.jobs).toHaveLength(0);
    expect((await h.status(taskId)).status).toBe('TASK_STATUS_QUEUED');
    // A fresh, delayed message (waiting spends none of the message's deliveries).
    expect(h.sent).toEqual([{ body: { task_id: taskId }, delaySeconds: 1 }]);

    await h.limiter.release('a-running-sync-request', { refund_images: false });
    expect(await h.consume(taskId)).toEqual({ acked: true, retried: false });
    expect(gpu.jobs).toHaveLength(1);
    expect((await h.status(taskId)).status).toBe('TASK_STATUS_SUCCEED');
    // Its slot is free again once it ended.
    expect((await h.limiter.acquire({ limits: { concurrency: 1 }, images: 1 })).allowed).toBe(true);
  });

  it('a failed async task refunds its images per day, as a failed sync request does; a succeeded one keeps them', async () => {
    const h = await harness({ images_per_day: 2 });
    gpu.script = [{ kind: 'status', status: 404, body: { error: { code: 'model_not_found', message: 'gone', param: 'model', type: 'not_found_error' } } }];
    const failed = await h.submitOk({ image_num: 2 });
    await h.consume(failed);
    expect((await h.status(failed)).status).toBe('TASK_STATUS_FAILED');

    const succeeded = await h.submitOk({ image_num: 2 });
    await h.consume(succeeded);
    expect((await h.status(succeeded)).status).toBe('TASK_STATUS_SUCCEED');
    const refused = await h.submit({ image_num: 1 });
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as ErrorBody).error.code).toBe('daily_image_limit_exceeded');
  });

  it('an async task cancelled while it waits refunds its images per day', async () => {
    const h = await harness({ images_per_day: 1 });
    const taskId = await h.submitOk();
    expect((await h.submit()).status).toBe(429);
    expect((await h.call(`/v1/tasks/${taskId}`, { method: 'DELETE' })).status).toBe(200);
    expect((await h.submit()).status).toBe(200);
  });
});
