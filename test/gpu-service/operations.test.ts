/**
 * Operations of the GPU service on the real tiny model: /healthz (execution providers), /readyz (200, then
 * 503 when the queue is full or no model can load), /metrics (Prometheus text after jobs, token needed),
 * structured logs carrying job ids.
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../gpu-service/src/app';
import type { ExecutionProvider } from '../../gpu-service/src/onnx/session';
import { tinyModelsDir } from '../helpers/tiny-model';
import { streamJob } from './sse-client';

const TOKEN = 'operations-test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
/** A provider that no build for this platform has (DirectML is Windows-only, CoreML macOS-only). */
const MISSING: ExecutionProvider = process.platform === 'win32' ? 'coreml' : 'dml';
const logLines: Array<Record<string, unknown>> = [];
let app: FastifyInstance;
let base: string;

beforeAll(async () => {
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logLines.push(JSON.parse(line));
      done();
    },
  });
  app = await buildApp({
    modelsDir: await tinyModelsDir(),
    serviceToken: TOKEN,
    executionProviders: [MISSING, 'cpu'],
    intraOpNumThreads: 1,
    queueMax: 1,
    maxBatch: 1,
    logger: { level: 'info', stream },
  });
  base = await app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => app?.close());

let n = 0;
const job = (over: Record<string, unknown> = {}) => ({
  id: `ops-${++n}-${Math.random().toString(36).slice(2)}`,
  model: 'tiny-analytic',
  prompt: 'a red apple',
  width: 64,
  height: 64,
  seed: 5,
  steps: 6,
  sampler: 'euler',
  ...over,
});

const get = (url: string, headers: Record<string, string> = auth) => app.inject({ method: 'GET', url, headers });

function metricValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : NaN;
}

describe('execution providers', () => {
  it('/healthz (no token) names the provider in use and the requested one this build cannot run, with why', async () => {
    const res = await get('/healthz', {});
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ ok: true, execution_provider: 'cpu', execution_providers: ['cpu'], requested_execution_providers: [MISSING, 'cpu'] });
    expect(body.unavailable_execution_providers).toEqual([{ name: MISSING, reason: expect.stringMatching(/not part of this onnxruntime-node build|backend/) }]);
    expect(body.available_execution_providers).toContain('cpu');
    // The provider in use is logged at start.
    expect(logLines.some((l) => l.msg === 'execution provider in use' && l.execution_provider === 'cpu')).toBe(true);
    expect(logLines.some((l) => l.msg === 'execution provider unavailable' && l.execution_provider === MISSING)).toBe(true);
  });

  it('refuses to start when no requested provider can run, saying which and why', async () => {
    await expect(
      buildApp({ modelsDir: await tinyModelsDir(), serviceToken: TOKEN, executionProviders: [MISSING], intraOpNumThreads: 1, queueMax: 1 }),
    ).rejects.toThrow(new RegExp(`ORT_EXECUTION_PROVIDERS=${MISSING}: none can run here: ${MISSING}: .*Add "cpu"`));
  });
});

describe('/readyz', () => {
  it('is 200 once a model loads, 503 queue_full while the queue is full, 200 again after', async () => {
    const ready = await get('/readyz');
    expect(ready.statusCode, ready.body).toBe(200);
    expect(ready.json()).toMatchObject({ ready: true, models_loaded: ['tiny-analytic'], queue_depth: 0 });
    expect((await get('/readyz', {})).statusCode).toBe(401);

    // One long job running, one waiting: the queue (QUEUE_MAX 1) is full.
    const long = (id: string) => job({ id, steps: 200, width: 1024, height: 1024, sampler: 'heun' });
    const first = await streamJob(base, TOKEN, long('ready-1'));
    await first.until((evs) => evs.some((e) => e.event === 'started'));
    const second = await streamJob(base, TOKEN, long('ready-2'));
    await second.until((evs) => evs.some((e) => e.event === 'queued'));
    const full = await get('/readyz');
    expect(full.statusCode).toBe(503);
    expect(full.headers['retry-after']).toBeDefined();
    expect(full.json()).toMatchObject({ ready: false, queue_depth: 1, error: { code: 'queue_full' } });

    // Metrics while busy: one waiting, one running.
    const busy = (await get('/metrics')).body;
    expect(metricValue(busy, 'gpu_service_queue_depth')).toBe(1);
    expect(metricValue(busy, 'gpu_service_jobs_running')).toBe(1);
    // A third job is refused, and counted as rejected.
    const third = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job() });
    expect(third.statusCode).toBe(503);

    await fetch(`${base}/v1/jobs/ready-2`, { method: 'DELETE', headers: auth });
    await fetch(`${base}/v1/jobs/ready-1`, { method: 'DELETE', headers: auth });
    expect((await first.final()).data.error.code).toBe('job_cancelled');
    expect((await second.final()).data.error.code).toBe('job_cancelled');
    expect((await get('/readyz')).statusCode).toBe(200);
    const after = (await get('/metrics')).body;
    expect(metricValue(after, 'gpu_service_jobs_total{outcome="cancelled"}')).toBeGreaterThanOrEqual(2);
    expect(metricValue(after, 'gpu_service_jobs_total{outcome="rejected"}')).toBeGreaterThanOrEqual(1);
  });

  it('is 503 no_model with the reason when no model folder can load', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'models-broken-'));
    await mkdir(join(dir, 'only-broken'));
    await writeFile(join(dir, 'only-broken', 'model_index.json'), '{ not json');
    const lonely = await buildApp({ modelsDir: dir, serviceToken: TOKEN, executionProviders: ['cpu'], intraOpNumThreads: 1, queueMax: 1 });
    try {
      const res = await lonely.inject({ method: 'GET', url: '/readyz', headers: auth });
      expect(res.statusCode).toBe(503);
      expect(res.json().error.code).toBe('no_model');
      expect(res.json().error.message).toMatch(/only-broken: .*JSON/);
      // Liveness is unaffected.
      expect((await lonely.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    } finally {
      await lonely.close();
    }
  });
});

describe('/metrics', () => {
  it('needs the token and reports jobs, latency, steps, images and batch sizes in Prometheus text', async () => {
    expect((await get('/metrics', {})).statusCode).toBe(401);
    const before = (await get('/metrics')).body;
    const res = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job({ batch_size: 2, steps: 5 }) });
    expect(res.statusCode, res.body).toBe(200);
    const metrics = await get('/metrics');
    expect(metrics.statusCode).toBe(200);
    expect(metrics.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = metrics.body;
    const delta = (series: string) => metricValue(text, series) - (metricValue(before, series) || 0);
    expect(delta('gpu_service_jobs_total{outcome="succeeded"}')).toBe(1);
    expect(delta('gpu_service_job_duration_seconds_count{outcome="succeeded"}')).toBe(1);
    expect(delta('gpu_service_images_total')).toBe(2);
    expect(delta('gpu_service_steps_total')).toBe(5);
    expect(delta('gpu_service_batch_size_sum')).toBe(2);
    expect(metricValue(text, 'gpu_service_steps_per_second')).toBeGreaterThan(0);
    expect(metricValue(text, 'gpu_service_queue_depth')).toBe(0);
    expect(metricValue(text, 'gpu_service_models_loaded')).toBe(1);
    expect(metricValue(text, 'gpu_service_model_memory_bytes')).toBeGreaterThan(0);
    expect(text).toMatch(/^# TYPE gpu_service_job_duration_seconds histogram$/m);
    expect(text).toMatch(/^gpu_service_process_cpu_seconds_total /m);
  });

  it('logs each job with its id', async () => {
    const j = job();
    expect((await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: j })).statusCode).toBe(200);
    const line = logLines.find((l) => l.job_id === j.id && l.msg === 'job finished');
    expect(line).toMatchObject({ outcome: 'succeeded', model: 'tiny-analytic', steps: 6 });
    expect(typeof line!.duration_ms).toBe('number');
  });
});
