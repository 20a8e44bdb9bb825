import { env, exports } from 'cloudflare:workers';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TaskJson } from '../../../edge/src/tasks/task-json';
import type { ImagesResponse } from '@image-api/shared/api/openai-images';
import type { ErrorBody } from '@image-api/shared/errors';
import { seedApiKey } from '../helpers/api-keys';
import { PNG_SIGNATURE } from '../helpers/png';
import { readEvents } from './sse-client';
import { installStreamingGpu, type StreamingGpu } from './streaming-gpu';

const ORIGIN = 'https://edge.test';
const KEY = 'sk-test-tasks-owner';
const SAME_TENANT_KEY = 'sk-test-tasks-colleague';
const OTHER_TENANT_KEY = 'sk-test-tasks-stranger';

function call(path: string, init: RequestInit = {}, key = KEY): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${key}`);
  return exports.default.fetch(`${ORIGIN}${path}`, { ...init, headers });
}

function generate(body: Record<string, unknown>, init: RequestInit = {}): Promise<Response> {
  return call('/v1/images/generations', {
    ...init,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'a red apple', size: '64x64', sampling_steps: 8, seed: 5, ...body }),
  });
}

async function task(id: string, key = KEY): Promise<TaskJson> {
  const response = await call(`/v1/tasks/${id}`, {}, key);
  expect(response.status).toBe(200);
  return (await response.json()) as TaskJson;
}

async function eventually<T>(read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() - start > timeoutMs) throw new Error(`condition not met in time; last value ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The id of the n-th job the fake received (waits for it). */
async function submittedId(gpu: StreamingGpu, n = 0): Promise<string> {
  await eventually(async () => gpu.submitted.length, (length) => length > n);
  return gpu.submitted[n].id;
}

async function objectsOf(taskId: string): Promise<string[]> {
  return (await env.IMAGES.list()).objects.map((object) => object.key).filter((key) => key.includes(`/${taskId}/`));
}

describe('/v1/tasks', () => {
  let gpu: StreamingGpu;
  beforeAll(async () => {
    await seedApiKey(env.API_KEYS, { key: KEY, name: 'owner', tenant: 'tenant-t' });
    await seedApiKey(env.API_KEYS, { key: SAME_TENANT_KEY, name: 'colleague', tenant: 'tenant-t' });
    await seedApiKey(env.API_KEYS, { key: OTHER_TENANT_KEY, name: 'stranger', tenant: 'tenant-s' });
  });
  beforeEach(() => {
    gpu = installStreamingGpu(env.GPU_SERVICE_URL, env.GPU_SERVICE_TOKEN);
  });
  afterEach(() => {
    gpu.release();
    gpu.restore();
  });

  it('a sync generation is a task: PROCESSING with progress while it runs, then SUCCEED with links, seed, receipt', async () => {
    gpu.plan = { holdAtStep: 4 };
    const pending = generate({});
    const id = await submittedId(gpu);
    await gpu.reached(id, 4);
    const running = await eventually(() => task(id), (t) => t.progress_percent > 0);
    expect(running).toMatchObject({ id, object: 'task', style: 'openai.generations', status: 'PROCESSING', data: null, receipt: null, attempts: 1 });
    expect(running.progress_percent).toBeGreaterThanOrEqual(12);
    expect(running.progress_percent).toBeLessThanOrEqual(50);
    expect(running.eta_seconds).toBeGreaterThan(0);

    gpu.release();
    const response = await pending;
    expect(response.status).toBe(200);
    expect(response.headers.get('x-task-id')).toBe(id);
    const body = (await response.json()) as ImagesResponse;
    expect(body.receipt).toMatchObject({ model: 'tiny-analytic', model_hash: 'sha256:fake', seed: 5, seeds: [5], steps: 8, engine_version: 'fake-1.2.3', onnxruntime_version: '1.30.0' });

    const done = await task(id);
    expect(done).toMatchObject({ status: 'SUCCEED', progress_percent: 100, error: null, reason: null });
    expect(done.receipt).toEqual(body.receipt);
    expect(done.usage).toEqual(body.usage);
    expect(done.data).toHaveLength(1);
    expect(done.data![0]).toMatchObject({ seed: 5, index: 0, mime_type: 'image/png' });
    const file = await exports.default.fetch(done.data![0].url);
    expect(file.status).toBe(200);
    expect(new Uint8Array(await file.arrayBuffer()).subarray(0, 8)).toEqual(PNG_SIGNATURE);
    const stored = await env.IMAGES.head((await objectsOf(id))[0]);
    expect(stored?.customMetadata).toMatchObject({ task_id: id, seed: '5', model_hash: 'sha256:fake', engine_version: 'fake-1.2.3', onnxruntime_version: '1.30.0', style: 'openai.generations' });
  });

  it('another key, of the same tenant or not, gets 404 for the task, its events and its cancel', async () => {
    gpu.plan = { holdAtStep: 2 };
    const pending = generate({});
    const id = await submittedId(gpu);
    await gpu.reached(id, 2);
    for (const key of [SAME_TENANT_KEY, OTHER_TENANT_KEY]) {
      for (const [path, method] of [
        [`/v1/tasks/${id}`, 'GET'],
        [`/v1/tasks/${id}/events`, 'GET'],
        [`/v1/tasks/${id}`, 'DELETE'],
      ]) {
        const response = await call(path, { method }, key);
        expect(response.status, `${method} ${path}`).toBe(404);
        expect(((await response.json()) as ErrorBody).error).toMatchObject({ code: 'task_not_found', type: 'not_found_error' });
      }
      const list = (await (await call('/v1/tasks', {}, key)).json()) as { data: TaskJson[] };
      expect(list.data.map((t) => t.id)).not.toContain(id);
    }
    expect(gpu.cancelRequests).toEqual([]);
    gpu.release();
    expect((await pending).status).toBe(200);
  });

  it('an unknown task is 404 and the routes need a key', async () => {
    expect((await call('/v1/tasks/no-such-task')).status).toBe(404);
    expect((await exports.default.fetch(`${ORIGIN}/v1/tasks/x`)).status).toBe(401);
    expect((await exports.default.fetch(`${ORIGIN}/v1/tasks`)).status).toBe(401);
  });

  it('events: the GPU events under public names with the service\'s ids; Last-Event-ID passes through; then the final event', async () => {
    gpu.plan = { holdAtStep: 3 };
    const pending = generate({});
    const id = await submittedId(gpu);
    await gpu.reached(id, 3);
    // GPU ids: 1 started, 2 step 1, 3 step 2, 4 step 3.
    const resumed = await call(`/v1/tasks/${id}/events`, { headers: { 'last-event-id': '2' } });
    expect(resumed.status).toBe(200);
    expect(resumed.headers.get('content-type')).toContain('text/event-stream');
    const first = await readEvents(resumed, (e) => e.data.step === 3);
    expect(gpu.eventRequests).toContainEqual({ id, lastEventId: '2' });
    expect(first.map((e) => [e.event, e.id, e.data.step])).toEqual([
      ['task.progress', '3', 2],
      ['task.progress', '4', 3],
    ]);
    expect(first[1].data).toMatchObject({ type: 'task.progress', task_id: id, total: 8, progress_percent: 37 });

    // A reader resuming after step 3 gets the rest live, then the row's final event.
    const rest = readEvents(await call(`/v1/tasks/${id}/events`, { headers: { 'last-event-id': '4' } }));
    await eventually(async () => gpu.eventRequests.filter((r) => r.lastEventId === '4').length, (n) => n > 0);
    gpu.release();
    expect((await pending).status).toBe(200);
    const events = await rest;
    const final = events[events.length - 1];
    expect(events.slice(0, -1).map((e) => e.data.step)).toEqual([4, 5, 6, 7, 8]);
    expect(final.event).toBe('task.completed');
    expect(final.id).toBe('final');
    expect(final.data).toMatchObject({ type: 'task.completed', task_id: id, status: 'SUCCEED', receipt: { seed: 5, steps: 8 } });
    const data = final.data.data as { url: string; seed: number }[];
    expect(data.map((item) => item.seed)).toEqual([5]);
    expect((await exports.default.fetch(data[0].url)).status).toBe(200);

    // After the final event there is nothing more: 204 stops EventSource from reconnecting.
    expect((await call(`/v1/tasks/${id}/events`, { headers: { 'last-event-id': 'final' } })).status).toBe(204);
  });

  it("an ended task's final event comes from the row, even after the GPU service forgot the job", async () => {
    const response = await generate({ n: 2 });
    expect(response.status).toBe(200);
    const id = response.headers.get('x-task-id')!;
    gpu.forget(id);
    const events = await readEvents(await call(`/v1/tasks/${id}/events`));
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ event: 'task.completed', id: 'final' });
    expect((events[0].data.data as { seed: number }[]).map((item) => item.seed)).toEqual([5, 6]);
    expect(gpu.eventRequests.filter((r) => r.id === id)).toEqual([]);
  });

  it('DELETE cancels any running task: the GPU job is cancelled, the task ends CANCELLED, the waiting client gets 409', async () => {
    gpu.plan = { holdAtStep: 2 };
    const pending = generate({});
    const id = await submittedId(gpu);
    await gpu.reached(id, 2);
    const cancel = await call(`/v1/tasks/${id}`, { method: 'DELETE' });
    expect(cancel.status).toBe(200);
    expect(((await cancel.json()) as TaskJson).status).toBe('CANCELLED');
    expect(gpu.cancelRequests).toEqual([id]);

    const response = await pending;
    expect(response.status).toBe(409);
    expect(((await response.json()) as ErrorBody).error.code).toBe('task_cancelled');
    const ended = await task(id);
    expect(ended).toMatchObject({ status: 'CANCELLED', data: null, error: { code: 'task_cancelled' } });
    expect(await objectsOf(id)).toEqual([]);

    const again = await call(`/v1/tasks/${id}`, { method: 'DELETE' });
    expect(again.status).toBe(409);
    expect(((await again.json()) as ErrorBody).error.code).toBe('task_not_cancellable');
    const events = await readEvents(await call(`/v1/tasks/${id}/events`));
    expect(events.map((e) => [e.event, e.data.status])).toEqual([['task.failed', 'CANCELLED']]);
  });

  it('a job that fails in the GPU service ends FAILED with its reason; the client gets 502 with the code', async () => {
    gpu.plan = { failAtStep: 2 };
    const response = await generate({});
    expect(response.status).toBe(502);
    const body = (await response.json()) as ErrorBody;
    expect(body.error).toMatchObject({ code: 'internal_error', type: 'server_error' });
    const id = response.headers.get('x-task-id')!;
    const failed = await task(id);
    expect(failed).toMatchObject({ status: 'FAILED', reason: 'The UNet failed at step 2.', error: { code: 'internal_error' }, data: null });
    const events = await readEvents(await call(`/v1/tasks/${id}/events`));
    expect(events.map((e) => e.event)).toEqual(['task.failed']);
    expect(events[0].data.error).toMatchObject({ code: 'internal_error', message: 'The UNet failed at step 2.' });
  });

  it('a refused submission (503 queue_full) still leaves a FAILED task behind the x-task-id', async () => {
    gpu.plan = { refuse: { status: 503, code: 'queue_full', headers: { 'retry-after': '3' } } };
    const response = await generate({});
    expect(response.status).toBe(503);
    const failed = await task(response.headers.get('x-task-id')!);
    expect(failed).toMatchObject({ status: 'FAILED', error: { code: 'queue_full' } });
  });

  it('a client that disconnects from a sync request does not lose its images: the task finishes and is listed', async () => {
    gpu.plan = { holdAtStep: 2 };
    const abort = new AbortController();
    const pending = generate({ seed: 77 }, { signal: abort.signal }).catch((error: unknown) => error);
    const id = await submittedId(gpu);
    await gpu.reached(id, 2);
    abort.abort();
    await pending;
    gpu.release();
    // The client never saw x-task-id: it finds the task in its list.
    const list = await eventually(
      async () => (await (await call('/v1/tasks?limit=5')).json()) as { data: TaskJson[] },
      (l) => l.data[0]?.id === id && l.data[0].status === 'SUCCEED',
    );
    expect(list.data[0].data![0].seed).toBe(77);
    expect(gpu.cancelRequests).toEqual([]);
    expect(await objectsOf(id)).toHaveLength(1);
  });

  it('link_ttl_seconds sets the lifetime of the links of a generation and of a task read; out of range is a 400', async () => {
    const response = await generate({ link_ttl_seconds: 600 });
    expect(response.status).toBe(200);
    const body = (await response.json()) as ImagesResponse;
    const exp = Number(new URL(body.data[0].url!).searchParams.get('exp'));
    expect(exp - Date.now() / 1000).toBeGreaterThan(590);
    expect(exp - Date.now() / 1000).toBeLessThanOrEqual(600);

    const id = response.headers.get('x-task-id')!;
    const read = (await (await call(`/v1/tasks/${id}?link_ttl_seconds=120`)).json()) as TaskJson;
    expect(read.data![0].expires_at - Date.now() / 1000).toBeGreaterThan(110);
    expect(read.data![0].expires_at - Date.now() / 1000).toBeLessThanOrEqual(120);

    const refused = await generate({ link_ttl_seconds: 10 });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as ErrorBody).error.param).toBe('link_ttl_seconds');
    const refusedRead = await call(`/v1/tasks/${id}?link_ttl_seconds=99999999`);
    expect(refusedRead.status).toBe(400);
  });

  it('GET /v1/tasks validates limit', async () => {
    for (const limit of ['0', '101', 'x']) {
      const response = await call(`/v1/tasks?limit=${limit}`);
      expect(response.status).toBe(400);
      expect(((await response.json()) as ErrorBody).error.param).toBe('limit');
    }
  });
});
