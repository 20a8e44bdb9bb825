/**
 * The reliability suite (issue 10 item 8): the whole local stack (GPU service + edge under Miniflare,
 * test/helpers/stack.ts) under crashes, restarts, bursts, fuzzed bodies and hostile images. Seeded and
 * bounded: one stack for the whole file, every wait has a deadline, the fuzz is deterministic (SEED).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorBodySchema } from '@image-api/shared/errors';
import { startSplitStack, type SplitStack } from '../helpers/stack';
import { fuzzCases, type FuzzCase } from './fuzz-bodies';
import { hostileImages, validPng } from './hostile-images';

const SEED = 20_261_207;
const FUZZ_COUNT = 2000;
/** The edge's task lease in this stack: a task whose edge died is stale after 3 s (production: 2 minutes). */
const STALE_SECONDS = 3;

interface TaskView {
  id: string;
  status: string;
  reason: string | null;
  progress_percent: number;
  style: string;
  error: { code: string } | null;
  attempts: number;
}

let stack: SplitStack;

function call(path: string, key: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${key}`);
  return fetch(`${stack.baseUrl}${path}`, { ...init, headers });
}

function postJson(path: string, key: string, body: unknown): Promise<Response> {
  return call(path, key, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

async function eventually<T>(what: string, read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await read();
    if (ok(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${what}: not reached in ${timeoutMs} ms; last ${JSON.stringify(last)}\n${stack.output().slice(-4000)}`);
}

async function tasksOf(key: string): Promise<TaskView[]> {
  const response = await call('/v1/tasks?limit=100', key);
  expect(response.status).toBe(200);
  return ((await response.json()) as { data: TaskView[] }).data;
}

async function taskOf(key: string, id: string): Promise<TaskView> {
  const response = await call(`/v1/tasks/${id}`, key);
  expect(response.status).toBe(200);
  return (await response.json()) as TaskView;
}

/**
 * Jobs long enough to be caught while they run: the async one (1024², 100 steps: several seconds on a CPU,
 * so several progress writes, which the edge makes at most once a second) runs first and is held there by
 * pausing the GPU service; the sync one (another size, so they are not batched) waits behind it in the GPU
 * service's queue.
 */
const LONG_SYNC = { prompt: 'a red apple', size: '256x256', sampling_steps: 100, response_format: 'b64_json', seed: 3 };
const LONG_ASYNC = {
  extra: {},
  request: { model_name: 'tiny-analytic', prompt: 'a blue sky', width: 1024, height: 1024, image_num: 1, steps: 100, guidance_scale: 7, sampler_name: 'Euler', seed: 4 },
};
const QUICK_SYNC = { prompt: 'a green leaf', size: '64x64', sampling_steps: 1, response_format: 'b64_json' };

/** Submit an async task; returns its id. */
async function submitAsync(key: string, body: unknown = LONG_ASYNC): Promise<string> {
  const response = await postJson('/v3/async/txt2img', key, body);
  expect(response.status, await response.clone().text()).toBe(200);
  return ((await response.json()) as { task_id: string }).task_id;
}

/** Why `response` is not a 4xx in the documented error shape ({error: {code, message, param, type}}), or null when it is. */
async function notClientError(response: Response, what: string): Promise<string | null> {
  const text = await response.text();
  if (response.status < 400 || response.status >= 500) return `${what}: ${response.status} ${text.slice(0, 200)}`;
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    // reported below
  }
  return ErrorBodySchema.safeParse(body).success ? null : `${what}: not the error shape: ${text.slice(0, 200)}`;
}

/**
 * Start the long async job, and once it runs at the GPU service, pause the service (SIGSTOP) so the job
 * is held mid-run however fast this machine is; then submit the long sync one, which the edge forwards
 * to the paused service. Resolves with the GPU service still paused: the caller kills it, or resumes it.
 */
async function syncAndAsyncAtTheGpu(syncKey: string): Promise<{ sync: Promise<Response | unknown>; syncId: string; asyncId: string }> {
  const asyncId = await submitAsync(stack.apiKey);
  await eventually('the async job runs', () => taskOf(stack.apiKey, asyncId), (t) => t.status === 'PROCESSING' && t.progress_percent > 0);
  stack.pauseGpu();
  const sync = postJson('/v1/images/generations', syncKey, LONG_SYNC).catch((error: unknown) => error);
  const [syncTask] = await eventually('the sync job is submitted', () => tasksOf(syncKey), (tasks) => tasks.length === 1 && tasks[0].attempts >= 1);
  expect((await taskOf(stack.apiKey, asyncId)).status, 'the async job ended before the GPU service was paused').toBe('PROCESSING');
  return { sync, syncId: syncTask.id, asyncId };
}

describe('reliability of the whole stack', () => {
  beforeAll(async () => {
    stack = await startSplitStack({
      keys: {
        // Every valid request costs more than this budget: fuzzed bodies never reach a GPU.
        fuzz: { compute_units_per_minute: 1e-9 },
        rpm10: { rpm: 10 },
        conc2: { concurrency: 2 },
        gpu1: { images_per_day: 1 },
        edge1: { images_per_day: 1 },
      },
      vars: { TASK_STALE_AFTER_SECONDS: String(STALE_SECONDS) },
    });
  }, 180_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it(`${FUZZ_COUNT} fuzzed bodies over every route: no 5xx, every 4xx in the documented error shape`, async () => {
    const png = (await validPng(64)).toString('base64');
    const cases = fuzzCases(SEED, FUZZ_COUNT, png);
    const failures: string[] = [];
    let next = 0;
    const run = async (c: FuzzCase) => {
      const headers: Record<string, string> = {};
      if (c.contentType) headers['content-type'] = c.contentType;
      const controller = new AbortController();
      const response = await call(c.path, stack.keys.fuzz, { method: c.method, headers, body: c.body, signal: controller.signal });
      const label = `${c.method} ${c.path} [${c.mutation}] → ${response.status}`;
      if ((response.headers.get('content-type') ?? '').includes('text/event-stream')) {
        controller.abort();
        failures.push(`${label}: an event stream for a task that does not exist`);
        return;
      }
      const text = await response.text();
      if (response.status >= 500) failures.push(`${label}: ${text.slice(0, 200)}`);
      else if (response.status >= 400 && !ErrorBodySchema.safeParse(JSON.parse(text || 'null')).success) failures.push(`${label}: not the error shape: ${text.slice(0, 200)}`);
    };
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < cases.length) await run(cases[next++]);
      }),
    );
    expect(failures).toEqual([]);
  });

  it('bombs, truncated and foreign-format images are refused with a 4xx on every image route', async () => {
    const failures: string[] = [];
    for (const [name, bytes] of Object.entries(await hostileImages())) {
      const base64 = bytes.toString('base64');
      failures.push((await notClientError(await postJson('/v1/img2img', stack.apiKey, { prompt: 'x', width: 64, height: 64, steps: 1, image_url: base64 }), `img2img: ${name}`)) ?? '');
      const form = new FormData();
      form.append('prompt', 'x');
      form.append('size', '64x64');
      form.append('image', new Blob([new Uint8Array(bytes)], { type: 'image/png' }), 'image.png');
      failures.push((await notClientError(await call('/v1/images/edits', stack.apiKey, { method: 'POST', body: form }), `edits: ${name}`)) ?? '');
      const asyncBody = { extra: {}, request: { ...LONG_ASYNC.request, width: 64, height: 64, steps: 1, image_base64: base64, strength: 0.5 } };
      failures.push((await notClientError(await postJson('/v3/async/img2img', stack.apiKey, asyncBody), `async img2img: ${name}`)) ?? '');
    }
    expect(failures.filter(Boolean)).toEqual([]);
  });

  it('50 simultaneous requests against rpm 10: exactly 10 admitted, 40 refused with 429 and Retry-After', async () => {
    const responses = await Promise.all(Array.from({ length: 50 }, () => postJson('/v1/images/generations', stack.keys.rpm10, QUICK_SYNC)));
    const statuses = responses.map((r) => r.status);
    await Promise.all(responses.map((r) => r.arrayBuffer()));
    expect(statuses.filter((s) => s === 200)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(40);
    for (const r of responses.filter((r) => r.status === 429)) expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('concurrency 2: six simultaneous async submits are all accepted, never more than 2 run at once, and all succeed', async () => {
    const quick = { extra: {}, request: { ...LONG_ASYNC.request, steps: 8, width: 128, height: 128 } };
    const ids = await Promise.all(Array.from({ length: 6 }, () => submitAsync(stack.keys.conc2, quick)));
    let mostRunning = 0;
    await eventually(
      'six async tasks SUCCEED',
      async () => {
        const tasks = (await tasksOf(stack.keys.conc2)).filter((t) => ids.includes(t.id));
        mostRunning = Math.max(mostRunning, tasks.filter((t) => t.status === 'PROCESSING').length);
        return tasks;
      },
      (tasks) => tasks.length === 6 && tasks.every((t) => t.status === 'SUCCEED'),
      60_000,
    );
    expect(mostRunning).toBeGreaterThan(0);
    expect(mostRunning).toBeLessThanOrEqual(2);
  });

  it('the GPU service killed mid sync and mid async job: the sync request fails with a reason and is refunded, the async task is retried and succeeds', async () => {
    const { sync, syncId, asyncId } = await syncAndAsyncAtTheGpu(stack.keys.gpu1);
    await stack.killGpu();
    const syncResponse = (await sync) as Response;
    expect(syncResponse.status).toBeGreaterThanOrEqual(500);
    expect(ErrorBodySchema.safeParse(await syncResponse.json()).success).toBe(true);
    const failed = await eventually('the sync task FAILED', () => taskOf(stack.keys.gpu1, syncId), (t) => t.status === 'FAILED');
    expect(failed.reason).toBeTruthy();
    const requeued = await eventually('the async task waits for another attempt', () => taskOf(stack.apiKey, asyncId), (t) => t.status === 'QUEUED');
    expect(requeued.reason).toBeTruthy();

    await stack.startGpu();
    await eventually('the async task SUCCEED after the GPU service came back', () => taskOf(stack.apiKey, asyncId), (t) => t.status === 'SUCCEED', 60_000);
    // The failed request's image was refunded: the key's one image per day is still there.
    const again = await postJson('/v1/images/generations', stack.keys.gpu1, QUICK_SYNC);
    expect(again.status, await again.clone().text()).toBe(200);
  });

  it('the edge restarted mid-task: the sync task ends FAILED with a reason (refunded), its event stream ends with task.failed, the async task polled through GET /v1/tasks/:id succeeds', async () => {
    const { sync, syncId, asyncId } = await syncAndAsyncAtTheGpu(stack.keys.edge1);
    const syncTask = { id: syncId };
    await stack.killEdge();
    expect(await sync).toBeInstanceOf(Error); // the client's connection died with the edge
    stack.resumeGpu(); // the jobs run on at the GPU service with no edge following them
    await stack.startEdge();

    const failed = await eventually('the orphaned sync task FAILED', () => taskOf(stack.keys.edge1, syncTask.id), (t) => t.status === 'FAILED', 30_000);
    expect(failed.error?.code).toBe('task_abandoned');
    expect(failed.reason).toMatch(/stopped responding/);
    const events = await (await call(`/v1/tasks/${syncTask.id}/events`, stack.keys.edge1)).text();
    expect(events).toMatch(/id: final\nevent: task\.failed\n/);

    await eventually('the orphaned async task SUCCEED', () => taskOf(stack.apiKey, asyncId), (t) => t.status === 'SUCCEED', 60_000);
    const again = await postJson('/v1/images/generations', stack.keys.edge1, QUICK_SYNC);
    expect(again.status, await again.clone().text()).toBe(200);
  });
});
