import { createExecutionContext } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { GenerationJobSchema, type GenerationJob, type GenerationResult } from '@image-api/shared/generation-job';
import { buildApp } from '../../../edge/src/app';
import { ModelCatalog } from '../../../edge/src/gpu/model-catalog';
import type { AsyncTaskMessage } from '../../../edge/src/queue/async-task-record';
import { ASYNC_STALE_AFTER_MS as TASK_STALE_AFTER_MS } from '../../../edge/src/queue/task-lease';
import { ASYNC_RETRY_MAX_DELAY_SECONDS } from '../../../edge/src/queue/retry-policy';
import type { TaskJson } from '../../../edge/src/tasks/task-json';
import { TaskStore } from '../../../edge/src/tasks/task-store';
import { seedApiKey } from '../helpers/api-keys';
import { fakeGenerationResult } from '../helpers/fake-result';
import { PNG_SIGNATURE } from '../helpers/png';
import { readEvents } from './sse-client';

const ORIGIN = 'https://edge.test';
let key = '';
const TENANT = 'tenant-r';
const LIMITS = { images_per_day: 1 };

/** What the fake GPU service knows about a job: GET /v1/jobs/:id answers it; unknown ids are 404. */
type FakeJobState = { status: 'running' } | { status: 'succeeded'; result: GenerationResult } | { status: 'failed'; message: string };

/**
 * A GPU service that only answers GET /v1/jobs/:id and GET /v1/jobs/:id/events (404 for unknown jobs),
 * installed as the isolate's fetch, plus the edge app with a Queue producer that records messages.
 */
function harness() {
  const jobs = new Map<string, FakeJobState>();
  const asked: string[] = [];
  const spy = vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    if (!request.url.startsWith(env.GPU_SERVICE_URL)) throw new TypeError(`fetch to ${request.url} is not allowed in tests`);
    const match = /^\/v1\/jobs\/([^/]+)(\/events)?$/.exec(url.pathname);
    if (!match) return Response.json({ error: { code: 'not_found', message: 'no route', param: null, type: 'not_found_error' } }, { status: 404 });
    const id = decodeURIComponent(match[1]);
    asked.push(`${request.method} ${url.pathname}`);
    const job = jobs.get(id);
    if (!job) return Response.json({ error: { code: 'job_not_found', message: 'No such job.', param: 'id', type: 'not_found_error' } }, { status: 404 });
    if (match[2]) return new Response(': stream\n\n', { headers: { 'content-type': 'text/event-stream' } });
    return Response.json({
      id,
      status: job.status,
      result: job.status === 'succeeded' ? job.result : null,
      error: job.status === 'failed' ? { code: 'internal_error', message: job.message, param: null, type: 'server_error' } : null,
    });
  });
  const sent: AsyncTaskMessage[] = [];
  const testEnv = { ...env, ASYNC_TASKS: { send: async (body: AsyncTaskMessage) => void sent.push(body) } } as unknown as typeof env;
  const app = buildApp({ catalog: new ModelCatalog() });
  const call = (path: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${key}`);
    return app.fetch(new Request(`${ORIGIN}${path}`, { ...init, headers }), testEnv, createExecutionContext());
  };
  return { jobs, asked, sent, call, restore: () => spy.mockRestore() };
}

let keyHash: string;
const limiter = () => env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(keyHash));

/** The job a route would have run for `id` (64×64 PNG, one image). */
function jobOf(id: string): GenerationJob {
  return GenerationJobSchema.parse({
    id, tenant: TENANT, model: 'tiny-analytic', mode: 'txt2img', prompt: 'a red apple', negative_prompt: '', width: 64, height: 64,
    batch_size: 1, seed: 7, steps: 4, sampler: 'euler', scheduler: 'normal', cfg_scale: 7, output: { format: 'png' }, preview: 'none',
  });
}

/**
 * A task as a runner left it when its edge died: open with `status`, submitted to `backend` (or not),
 * lease last refreshed longer ago than the stale threshold; with the rate-limit lease its route took
 * (one image of the key's images_per_day 1).
 */
async function orphanedTask(options: { status: 'QUEUED' | 'PROCESSING'; backend: string | null; style?: string; attempts?: number; freshMs?: number }): Promise<string> {
  const id = crypto.randomUUID();
  const store = new TaskStore(env.DB);
  const { init_image: _i, mask: _m, ...stored } = jobOf(id);
  await store.create({ id, owner: { tenant: TENANT, key_hash: keyHash }, key_name: 'owner', style: options.style ?? 'openai.generations', request: { request: {}, job: stored } });
  const updatedAt = Date.now() - (options.freshMs ?? TASK_STALE_AFTER_MS + 1000);
  await env.DB.prepare('UPDATE tasks SET status = ?, backend = ?, attempts = ?, updated_at = ? WHERE id = ?')
    .bind(options.status, options.backend, options.attempts ?? 1, updatedAt, id)
    .run();
  const admitted = await limiter().acquire({ limits: LIMITS, images: 1, lease_id: id });
  expect(admitted.allowed).toBe(true);
  return id;
}

/** Whether the key may generate one more image today (then gives it back). */
async function imageLeftToday(): Promise<boolean> {
  const decision = await limiter().acquire({ limits: LIMITS, images: 1 });
  if (decision.allowed) await limiter().release(decision.lease_id, { refund_images: true });
  return decision.allowed;
}

async function taskOf(h: ReturnType<typeof harness>, id: string): Promise<TaskJson> {
  const response = await h.call(`/v1/tasks/${id}`);
  expect(response.status).toBe(200);
  return (await response.json()) as TaskJson;
}

describe('tasks whose edge died are reconciled with the GPU service on the next read', () => {
  let h: ReturnType<typeof harness>;
  beforeEach(async () => {
    // A key of its own per test (own RateLimiter: its images_per_day starts unused).
    key = `sk-test-reconcile-${crypto.randomUUID()}`;
    keyHash = await seedApiKey(env.API_KEYS, { key, name: 'owner', tenant: TENANT, limits: LIMITS });
    h = harness();
  });
  afterEach(() => h.restore());

  it('a sync task whose job the GPU service lost is FAILED with a reason, and its image is refunded', async () => {
    const id = await orphanedTask({ status: 'PROCESSING', backend: env.GPU_SERVICE_URL });
    expect(await imageLeftToday()).toBe(false);
    const task = await taskOf(h, id);
    expect(task.status).toBe('FAILED');
    expect(task.error).toMatchObject({ code: 'task_abandoned', type: 'server_error' });
    expect(task.reason).toMatch(/stopped responding.*GPU service no longer knows its job/);
    expect(h.asked).toContain(`GET /v1/jobs/${id}`);
    expect(await imageLeftToday()).toBe(true);
  });

  it('a sync task that never reached a GPU service is FAILED saying so', async () => {
    const id = await orphanedTask({ status: 'QUEUED', backend: null });
    const task = await taskOf(h, id);
    expect(task.status).toBe('FAILED');
    expect(task.reason).toMatch(/before its job reached a GPU service/);
    expect(await imageLeftToday()).toBe(true);
  });

  it('a job that failed at the GPU service fails the task with the service\'s reason', async () => {
    const id = await orphanedTask({ status: 'PROCESSING', backend: env.GPU_SERVICE_URL });
    h.jobs.set(id, { status: 'failed', message: 'The UNet failed at step 3.' });
    const task = await taskOf(h, id);
    expect(task.status).toBe('FAILED');
    expect(task.reason).toMatch(/The UNet failed at step 3\./);
  });

  it('a job that finished at the GPU service ends the task SUCCEED with its images stored, and the image stays charged', async () => {
    const id = await orphanedTask({ status: 'PROCESSING', backend: env.GPU_SERVICE_URL });
    h.jobs.set(id, { status: 'succeeded', result: await fakeGenerationResult(jobOf(id)) });
    const task = await taskOf(h, id);
    expect(task).toMatchObject({ status: 'SUCCEED', progress_percent: 100, error: null });
    expect(task.data).toHaveLength(1);
    expect(task.data![0]).toMatchObject({ seed: 7, mime_type: 'image/png' });
    const file = await h.call(new URL(task.data![0].url).pathname + new URL(task.data![0].url).search);
    expect(file.status).toBe(200);
    expect(new Uint8Array(await file.arrayBuffer()).subarray(0, 8)).toEqual(PNG_SIGNATURE);
    const [object] = (await env.IMAGES.list({ prefix: `${TENANT}/` })).objects.filter((o) => o.key.includes(`/${id}/`));
    expect((await env.IMAGES.head(object.key))!.customMetadata).toMatchObject({ task_id: id, seed: '7', recovered: 'true' });
    expect(await imageLeftToday()).toBe(false);
    await limiter().release(id, { refund_images: true });
  });

  it('a stale task whose job still runs at the GPU service stays open; a fresh one is not even looked up', async () => {
    const running = await orphanedTask({ status: 'PROCESSING', backend: env.GPU_SERVICE_URL });
    h.jobs.set(running, { status: 'running' });
    expect((await taskOf(h, running)).status).toBe('PROCESSING');
    await limiter().release(running, { refund_images: true });
    const fresh = await orphanedTask({ status: 'PROCESSING', backend: env.GPU_SERVICE_URL, freshMs: 1000 });
    expect((await taskOf(h, fresh)).status).toBe('PROCESSING');
    expect(h.asked).not.toContain(`GET /v1/jobs/${fresh}`);
    await limiter().release(fresh, { refund_images: true });
  });

  it('GET /v1/tasks reconciles the open tasks it lists', async () => {
    const id = await orphanedTask({ status: 'PROCESSING', backend: env.GPU_SERVICE_URL });
    const list = (await (await h.call('/v1/tasks')).json()) as { data: TaskJson[] };
    expect(list.data.find((task) => task.id === id)?.status).toBe('FAILED');
  });

  it('the event stream of a dead task ends with its final task.failed event', async () => {
    const id = await orphanedTask({ status: 'PROCESSING', backend: env.GPU_SERVICE_URL });
    const response = await h.call(`/v1/tasks/${id}/events`);
    expect(response.status).toBe(200);
    const events = await readEvents(response);
    const last = events[events.length - 1];
    expect(last).toMatchObject({ event: 'task.failed', id: 'final' });
    expect(JSON.stringify(last.data)).toMatch(/task_abandoned/);
  });

  it('an async task polled only through GET /v1/tasks/:id is queued again (new Queue message) when its consumer died', async () => {
    const id = await orphanedTask({ status: 'PROCESSING', backend: env.GPU_SERVICE_URL, style: 'async.txt2img', attempts: 1 });
    const task = await taskOf(h, id);
    expect(task.status).toBe('QUEUED');
    expect(task.reason).toMatch(/queued again/);
    expect(h.sent).toEqual([{ task_id: id }]);
    await limiter().release(id, { refund_images: true });
  });

  it('an async task left QUEUED longer than any retry delay has lost its Queue message: a read sends another', async () => {
    const waiting = await orphanedTask({ status: 'QUEUED', backend: null, style: 'async.txt2img', freshMs: ASYNC_RETRY_MAX_DELAY_SECONDS * 1000 });
    expect((await taskOf(h, waiting)).status).toBe('QUEUED');
    expect(h.sent).toEqual([]);
    await limiter().release(waiting, { refund_images: true });
    const lost = await orphanedTask({ status: 'QUEUED', backend: null, style: 'async.txt2img', freshMs: ASYNC_RETRY_MAX_DELAY_SECONDS * 1000 + TASK_STALE_AFTER_MS + 1000 });
    expect((await taskOf(h, lost)).status).toBe('QUEUED');
    expect(h.sent).toEqual([{ task_id: lost }]);
    // Taken over: the next read does not send again.
    await taskOf(h, lost);
    expect(h.sent).toHaveLength(1);
    await limiter().release(lost, { refund_images: true });
  });
});
