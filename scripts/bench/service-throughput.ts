/**
 * Images per second of the GPU service (gpu-service/src/app.ts `buildApp`) under a closed-loop load:
 * `concurrency` clients each send POST /v1/jobs (through app.inject, no sockets) and send the next job
 * as soon as the previous one is answered, until `jobs` jobs are done. Jobs share model, size, steps,
 * sampler and scheduler (what dynamic batching groups) and differ by seed and prompt.
 *
 * Batching is switched with buildApp's `maxBatch` / `batchWindowMs` options (issue 5 part 2). When the
 * service has no batching, those options are ignored and "batch" equals "nobatch" within noise.
 */
import type { FastifyInstance } from 'fastify';
import { buildApp, type AppOptions } from '../../gpu-service/src/app';

/** Batching settings passed to buildApp. */
export interface BatchingSettings {
  maxBatch: number;
  batchWindowMs: number;
}

/** Batching off: one job per UNet run. */
export const NO_BATCHING: Readonly<BatchingSettings> = { maxBatch: 1, batchWindowMs: 0 };
/** Batching on: up to 8 jobs per UNet run, gathered for at most 5 ms. */
export const BATCHING: Readonly<BatchingSettings> = { maxBatch: 8, batchWindowMs: 5 };

/** The job every client sends (seed and prompt vary per job). */
export interface ThroughputJob {
  model: string;
  width: number;
  height: number;
  steps: number;
  sampler: string;
  cfgScale: number;
}

/** One measured point. */
export interface ThroughputPoint {
  concurrency: number;
  batching: boolean;
  jobs: number;
  seconds: number;
  imagesPerSecond: number;
  /** Mean time from request to response, ms. */
  meanLatencyMs: number;
}

const TOKEN = 'bench-service-token-0123456789';
const PROMPTS = ['a red apple', 'a blue sky over the sea', 'green grass in a field', 'a yellow sun', 'a purple flower'];

/** Jobs of the untimed warm-up load (model load, onnxruntime buffers, JIT of the service's hot paths). */
const WARM_UP_JOBS = 16;

/**
 * Start a GPU service app on `modelsDir` with the given batching, load `job.model` and warm it up with
 * WARM_UP_JOBS jobs from 4 concurrent clients (untimed).
 * @throws Error when a warm-up job fails (the message carries the service's answer).
 */
export async function startBenchService(modelsDir: string, batching: BatchingSettings, job: ThroughputJob, intraOpNumThreads = 0): Promise<FastifyInstance> {
  const options = {
    modelsDir,
    serviceToken: TOKEN,
    executionProviders: ['cpu'],
    intraOpNumThreads,
    queueMax: 64,
    jobTimeoutSeconds: 0,
    startTimeoutSeconds: 0,
    ...batching,
  } as AppOptions & BatchingSettings;
  const app = await buildApp(options);
  await postJob(app, job, 0);
  await measureThroughput(app, job, 4, WARM_UP_JOBS, batching.maxBatch > 1);
  return app;
}

/**
 * Measure one point: `concurrency` closed-loop clients until `jobs` jobs are answered.
 * @throws Error when any job is answered with a status other than 200.
 */
export async function measureThroughput(
  app: FastifyInstance,
  job: ThroughputJob,
  concurrency: number,
  jobs: number,
  batching: boolean,
): Promise<ThroughputPoint> {
  let next = 0;
  let latencyMs = 0;
  const start = performance.now();
  const client = async () => {
    while (next < jobs) {
      const n = next++;
      const sent = performance.now();
      await postJob(app, job, 1000 + n);
      latencyMs += performance.now() - sent;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  const seconds = (performance.now() - start) / 1000;
  return { concurrency, batching, jobs, seconds, imagesPerSecond: jobs / seconds, meanLatencyMs: latencyMs / jobs };
}

async function postJob(app: FastifyInstance, job: ThroughputJob, seed: number): Promise<void> {
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
}
