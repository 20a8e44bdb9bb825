import { describe, expect, it } from 'vitest';
import type { GenerationJobInput } from '@image-api/shared/generation-job';
import { GpuBackendPool, DOWN_MS, MAX_BUSY_MS } from '../../../edge/src/gpu/backend-pool';
import { ApiError } from '../../../edge/src/lib/api-error';
import { fakeBackends } from './fake-backends';

const TOKEN = 'pool-token';
const A = 'http://gpu-a.test:8788';
const B = 'http://gpu-b.test:8788';
const C = 'http://gpu-c.test:8788';

function job(id: string): GenerationJobInput {
  return { id, model: 'tiny-analytic', prompt: 'a red apple', width: 64, height: 64, seed: 7, steps: 2 };
}

const fetches = new WeakMap<GpuBackendPool, typeof fetch>();
const fetchOf = (pool: GpuBackendPool) => fetches.get(pool)!;

/** A pool over fake backends with a hand-driven clock. */
function setup(urls = [A, B]) {
  const fake = fakeBackends(urls, TOKEN);
  let nowMs = 1_000_000;
  const pool = new GpuBackendPool({ urls, token: TOKEN, fetch: fake.fetch, now: () => nowMs });
  fetches.set(pool, fake.fetch);
  return { pool, backends: fake.backends, advance: (ms: number) => (nowMs += ms) };
}

const posts = (requests: string[]) => requests.filter((r) => r === 'POST /v1/jobs').length;

async function waitUntil(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('GpuBackendPool: failover', () => {
  it('a connection error on the chosen backend runs the job once, on the other one, with the same job id', async () => {
    const { pool, backends } = setup();
    const [a, b] = backends;
    b.queueDepth = 3; // A looks emptier, so it is tried first
    a.mode = 'refuse_jobs';
    const result = await pool.runJob(job('job-conn'));
    expect(result.id).toBe('job-conn');
    expect(posts(a.requests)).toBe(1);
    expect(a.ran).toEqual([]);
    expect(b.ran).toEqual(['job-conn']);
    expect(pool.backendOf('job-conn')).toBe(B);
    expect(pool.status().find((s) => s.url === A)).toMatchObject({ down: true, inFlight: 0 });
  });

  it('an unreachable backend (its probe fails) is not sent the job', async () => {
    const { pool, backends } = setup();
    const [a, b] = backends;
    a.mode = 'refuse';
    await pool.runJob(job('job-unreachable'));
    expect(posts(a.requests)).toBe(0);
    expect(b.ran).toEqual(['job-unreachable']);
  });

  it('a 503 (queue_full) on the first backend runs the job on the second; A is skipped for its Retry-After', async () => {
    const { pool, backends, advance } = setup();
    const [a, b] = backends;
    b.queueDepth = 1; // A is picked first
    a.mode = 'busy';
    await pool.runJob(job('job-busy'));
    expect(posts(a.requests)).toBe(1);
    expect(b.ran).toEqual(['job-busy']);
    const downUntil = pool.status().find((s) => s.url === A)!.downUntilMs;

    a.mode = 'ok';
    await pool.runJob(job('job-next'));
    expect(posts(a.requests)).toBe(1); // skipped while busy (Retry-After: 2 s)
    expect(b.ran).toEqual(['job-busy', 'job-next']);

    expect(downUntil).toBe(1_000_000 + 2_000); // Retry-After 2 s (≤ MAX_BUSY_MS)
    expect(MAX_BUSY_MS).toBeGreaterThan(2_000);
    advance(2_000);
    b.queueDepth = 5;
    advance(10_000); // probe cache expired too
    await pool.runJob(job('job-back'));
    expect(a.ran).toEqual(['job-back']);
  });

  it('when every backend is busy the last 503 reaches the caller with its Retry-After', async () => {
    const { pool, backends } = setup();
    for (const backend of backends) backend.mode = 'busy';
    const error = await pool.runJob(job('job-all-busy')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 503, code: 'queue_full', headers: { 'retry-after': '2' } });
    expect(backends.map((b) => posts(b.requests))).toEqual([1, 1]);
  });

  it('a 400 from a backend reaches the caller unchanged and is not retried elsewhere', async () => {
    const { pool, backends } = setup();
    for (const backend of backends) backend.mode = 'invalid';
    const error = await pool.runJob(job('job-invalid')).catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 400, code: 'invalid_parameter', param: 'width' });
    expect(backends.map((b) => posts(b.requests)).sort()).toEqual([0, 1]);
    expect(pool.status().every((s) => !s.down)).toBe(true);
  });

  it('an unknown job: cancel answers null and events 404, and nothing is submitted', async () => {
    const { pool, backends } = setup();
    const error = await pool.cancelJob('unknown-job');
    expect(error).toBeNull();
    const bad = await pool
      .jobEvents('unknown-job')
      .then(() => null)
      .catch((e: unknown) => e);
    expect(bad).toMatchObject({ status: 404, code: 'job_not_found' });
    expect(backends.every((b) => posts(b.requests) === 0)).toBe(true);
  });

  it('a stream that cannot be opened fails over; a stream that breaks marks its backend down', async () => {
    const { pool, backends } = setup();
    const [a, b] = backends;
    b.queueDepth = 2;
    a.mode = 'die_mid_stream';
    const first = await pool.streamJob(job('job-stream'));
    expect(first.backendUrl).toBe(A);
    await expect(first.response.text()).rejects.toThrow();
    expect(pool.status().find((s) => s.url === A)).toMatchObject({ down: true, inFlight: 0 });

    // The runner resubmits the same job id: it goes to B and completes there.
    const second = await pool.streamJob(job('job-stream'));
    expect(second.backendUrl).toBe(B);
    expect(await second.response.text()).toContain('event: done');
    expect(b.ran).toEqual(['job-stream']);
    expect(pool.backendOf('job-stream')).toBe(B);
  });

  it('a stream our side aborts does not mark its backend down', async () => {
    const { pool, backends } = setup();
    const release = backends[0].hold();
    backends[1].queueDepth = 1;
    const abort = new AbortController();
    const stream = await pool.streamJob(job('job-aborted'), abort.signal);
    expect(stream.backendUrl).toBe(A);
    const reading = stream.response.text();
    abort.abort(new DOMException('client went away', 'AbortError'));
    await expect(reading).rejects.toThrow();
    release();
    expect(pool.status()[0]).toMatchObject({ down: false, inFlight: 0 });
  });
});

describe('GpuBackendPool: choice by health and queue depth', () => {
  it('a backend marked down is skipped until its down time has passed', async () => {
    const { pool, backends, advance } = setup();
    const [a, b] = backends;
    pool.markDown(A);
    for (let i = 0; i < 3; i++) await pool.runJob(job(`skip-${i}`));
    expect(a.requests).toEqual([]);
    expect(b.ran).toHaveLength(3);
    advance(DOWN_MS);
    b.queueDepth = 4;
    advance(10_000);
    await pool.runJob(job('after-down'));
    expect(a.ran).toEqual(['after-down']);
  });

  it('a backend whose /readyz answers 503 is not chosen while another is ready', async () => {
    const { pool, backends } = setup();
    const [a, b] = backends;
    a.ready = false;
    b.queueDepth = 9;
    await pool.runJob(job('ready-1'));
    expect(a.ran).toEqual([]);
    expect(b.ran).toEqual(['ready-1']);
    expect(a.requests).toContain('GET /readyz');
    expect(pool.status()[0]).toMatchObject({ ready: false });
  });

  it('services without /readyz are probed with /healthz', async () => {
    const { pool, backends } = setup();
    for (const backend of backends) backend.hasReadyz = false;
    await pool.runJob(job('healthz-1'));
    expect(backends[0].requests.slice(0, 2)).toEqual(['GET /readyz', 'GET /healthz']);
    expect(backends.flatMap((b) => b.ran)).toEqual(['healthz-1']);
  });

  it('the reported queue depth steers jobs to the emptier backend; probes are cached', async () => {
    const { pool, backends } = setup([A, B, C]);
    const [a, b, c] = backends;
    a.queueDepth = 4;
    b.queueDepth = 0;
    c.queueDepth = 2;
    await pool.runJob(job('depth-1'));
    expect(b.ran).toEqual(['depth-1']);
    await pool.runJob(job('depth-2'));
    expect(a.requests.filter((r) => r === 'GET /readyz')).toHaveLength(1); // cached within HEALTH_TTL_MS
    expect(b.ran).toEqual(['depth-1', 'depth-2']);
  });

  it('running jobs count like waiting ones (queue_depth + running from /readyz)', async () => {
    const { pool, backends } = setup();
    const [a, b] = backends;
    a.running = 2;
    b.queueDepth = 1;
    await pool.runJob(job('running-1'));
    expect(b.ran).toEqual(['running-1']);
    expect(pool.status().map((s) => s.queueDepth)).toEqual([2, 1]);
  });

  it('jobs running at once are spread over the backends by the jobs in flight', async () => {
    const { pool, backends } = setup();
    const releases = backends.map((b) => b.hold());
    const running = [pool.runJob(job('spread-1')), pool.runJob(job('spread-2')), pool.runJob(job('spread-3')), pool.runJob(job('spread-4'))];
    await waitUntil(() => backends[0].held + backends[1].held === 4);
    expect(backends.map((b) => b.held)).toEqual([2, 2]);
    for (const release of releases) release();
    await Promise.all(running);
    expect(pool.status().map((s) => s.inFlight)).toEqual([0, 0]);
  });

  it('events, status and cancel go to the backend that has the job', async () => {
    const { pool, backends } = setup();
    const [a, b] = backends;
    pool.markDown(A);
    await pool.runJob(job('located'));
    expect(b.ran).toEqual(['located']);
    const events = await pool.jobEvents('located', { lastEventId: '1' });
    expect(events.backendUrl).toBe(B);
    expect(await events.response.text()).toContain('"after":"1"');

    // A fresh pool (another isolate) finds the job by asking every backend.
    const other = new GpuBackendPool({ urls: [A, B], token: TOKEN, fetch: fetchOf(pool) });
    expect(await other.getJob('located')).toMatchObject({ id: 'located', status: 'succeeded' });
    expect(await other.cancelJob('located')).toMatchObject({ id: 'located', cancelled: true });
    expect(a.requests).toContain('DELETE /v1/jobs/located');
    expect((await other.jobEvents('located', { backendUrl: B })).backendUrl).toBe(B);
  });
});
