/**
 * Images per second of the GPU service (gpu-service/src/app.ts `buildApp`) under a closed-loop load:
 * `concurrency` clients each send POST /v1/jobs (through app.inject, no sockets) and send the next job
 * as soon as the previous one is answered, until enough jobs are answered and enough time has passed. Jobs share model, size, steps,
 * sampler and scheduler (what dynamic batching groups) and differ by seed and prompt.
 *
 * Batching is switched with buildApp's `maxBatch` / `batchWindowMs` options (issue 5 part 2): on = the
 * service's defaults (MAX_BATCH, BATCH_WINDOW_MS), off = maxBatch 1. The service's own /metrics
 * (gpu_service_batch_jobs histogram) tells how many jobs each UNet run really carried.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { buildApp, type AppOptions } from '../../gpu-service/src/app';
import { DEFAULT_BATCH_WINDOW_MS, DEFAULT_MAX_BATCH } from '../../gpu-service/src/config';

/** Batching settings passed to buildApp. */
export interface BatchingSettings {
  maxBatch: number;
  batchWindowMs: number;
}

/** Batching off: one job per UNet run. */
export const NO_BATCHING: Readonly<BatchingSettings> = { maxBatch: 1, batchWindowMs: 0 };
/** Batching on, with the service's defaults (up to 8 jobs per UNet run, gathered for at most 10 ms). */
export const BATCHING: Readonly<BatchingSettings> = { maxBatch: DEFAULT_MAX_BATCH, batchWindowMs: DEFAULT_BATCH_WINDOW_MS };

/** The job every client sends (seed and prompt vary per job). */
export interface ThroughputJob {
  model: string;
  width: number;
  height: number;
  steps: number;
  sampler: string;
  cfgScale: number;
}

/** When a point stops: once at least `minJobs` jobs are answered and `minSeconds` have passed. */
export interface PointLength {
  minJobs: number;
  minSeconds: number;
}

/** One measured point. */
export interface ThroughputPoint {
  concurrency: number;
  batching: boolean;
  jobs: number;
  seconds: number;
  imagesPerSecond: number;
  /** Mean, median and 95th percentile of the time from request to response, ms. */
  meanLatencyMs: number;
  p50LatencyMs: number;
  p95LatencyMs: number;
  /** sha256 of each answered job's first image, by seed: batch and nobatch answers are compared per seed. */
  imageHashes: Record<number, string>;
  /** Mean jobs per sampling run during this point, from the service's /metrics (null when it has no such metric). */
  meanJobsPerRun: number | null;
}

const TOKEN = 'bench-service-token-0123456789';
const PROMPTS = ['a red apple', 'a blue sky over the sea', 'green grass in a field', 'a yellow sun', 'a purple flower'];

/** Jobs of the untimed warm-up load (model load, onnxruntime buffers, JIT of the service's hot paths). */
const WARM_UP_JOBS = 16;

/** What a bench service may change from the defaults: fewer warm-up jobs for slow models, extra buildApp options. */
export interface BenchServiceOptions {
  /** Untimed warm-up jobs after the first one (default WARM_UP_JOBS). */
  warmUpJobs?: number;
  /** More buildApp options (e.g. the CLIP tokenizer folder of a checkpoint model). */
  app?: Partial<AppOptions>;
}

/**
 * Start a GPU service app on `modelsDir` with the given batching, load `job.model` and warm it up with
 * WARM_UP_JOBS (or `extra.warmUpJobs`) jobs from 4 concurrent clients (untimed).
 * @throws Error when a warm-up job fails (the message carries the service's answer).
 */
export async function startBenchService(
  modelsDir: string,
  batching: BatchingSettings,
  job: ThroughputJob,
  intraOpNumThreads = 0,
  extra: BenchServiceOptions = {},
): Promise<FastifyInstance> {
  const options: AppOptions = {
    ...extra.app,
    modelsDir,
    serviceToken: TOKEN,
    executionProviders: ['cpu'],
    intraOpNumThreads,
    queueMax: 64,
    jobTimeoutSeconds: 0,
    startTimeoutSeconds: 0,
    ...batching,
  };
  const app = await buildApp(options);
  await postJob(app, job, 0);
  const warmUpJobs = extra.warmUpJobs ?? WARM_UP_JOBS;
  if (warmUpJobs > 0) await measureThroughput(app, job, 4, { minJobs: warmUpJobs, minSeconds: 0 }, batching.maxBatch > 1);
  return app;
}

/**
 * Measure one point: `concurrency` closed-loop clients; no client starts a job once `length` is reached,
 * and the point ends when the last answer arrives (images per second = answered jobs / that time).
 * @throws Error when any job is answered with a status other than 200.
 */
export async function measureThroughput(
  app: FastifyInstance,
  job: ThroughputJob,
  concurrency: number,
  length: PointLength,
  batching: boolean,
): Promise<ThroughputPoint> {
  let started = 0;
  let answered = 0;
  const latencies: number[] = [];
  const imageHashes: Record<number, string> = {};
  const runsBefore = await batchJobsMetric(app);
  const start = performance.now();
  const enough = () => answered >= length.minJobs && performance.now() - start >= length.minSeconds * 1000;
  const client = async () => {
    while (!enough() && (started < length.minJobs || performance.now() - start < length.minSeconds * 1000)) {
      const seed = 1000 + started++;
      const sent = performance.now();
      imageHashes[seed] = await postJob(app, job, seed);
      latencies.push(performance.now() - sent);
      answered++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  const seconds = (performance.now() - start) / 1000;
  const runsAfter = await batchJobsMetric(app);
  const meanJobsPerRun =
    runsBefore && runsAfter && runsAfter.count > runsBefore.count ? (runsAfter.sum - runsBefore.sum) / (runsAfter.count - runsBefore.count) : null;
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    concurrency,
    batching,
    jobs: answered,
    seconds,
    imagesPerSecond: answered / seconds,
    meanLatencyMs: latencies.reduce((a, b) => a + b, 0) / answered,
    p50LatencyMs: percentile(sorted, 0.5),
    p95LatencyMs: percentile(sorted, 0.95),
    imageHashes,
    meanJobsPerRun,
  };
}

/** The q-quantile of ascending `sorted` (nearest rank). */
export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/**
 * Seeds answered by both points whose images differ (batched images must be byte-identical to unbatched ones).
 * @returns [seeds compared, seeds that differ].
 */
export function compareImages(a: ThroughputPoint, b: ThroughputPoint): [number, number] {
  let compared = 0;
  let differ = 0;
  for (const [seed, hash] of Object.entries(a.imageHashes)) {
    const other = b.imageHashes[Number(seed)];
    if (other === undefined) continue;
    compared++;
    if (other !== hash) differ++;
  }
  return [compared, differ];
}

/** Sum and count of the gpu_service_batch_jobs histogram from GET /metrics, or null when absent. */
async function batchJobsMetric(app: FastifyInstance): Promise<{ sum: number; count: number } | null> {
  const res = await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } });
  if (res.statusCode !== 200) return null;
  const value = (name: string) => {
    const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(res.body);
    return match ? Number(match[1]) : undefined;
  };
  const sum = value('gpu_service_batch_jobs_sum');
  const count = value('gpu_service_batch_jobs_count');
  return sum === undefined || count === undefined ? null : { sum, count };
}

/** POST one job; @returns the sha256 (hex) of its first image's bytes. */
async function postJob(app: FastifyInstance, job: ThroughputJob, seed: number): Promise<string> {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/jobs',
    headers: { authorization: `Bearer ${TOKEN}` },
    payload: {
      id: `bench-${seed}-${Math.random().toString(36).slice(2)}`,
      model: job.model,
      prompt: PROMPTS[seed % PROMPTS.length],
      width: job.width,
      height: job.height,
      seed,
      steps: job.steps,
      sampler: job.sampler,
      scheduler: 'normal',
      cfg_scale: job.cfgScale,
    },
  });
  if (res.statusCode !== 200) throw new Error(`POST /v1/jobs answered ${res.statusCode}: ${res.body.slice(0, 500)}`);
  const b64 = (res.json() as { images: { b64: string }[] }).images[0].b64;
  return createHash('sha256').update(b64).digest('hex');
}
