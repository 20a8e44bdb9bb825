/**
 * Dynamic batching on the real tiny model: jobs that queued up while the slot was busy run as one batch
 * (the `started` event says so, and the batch-size metric counts it), and every image comes out
 * byte-identical to the same job run with batching off. A job cancelled mid-batch ends at once; the
 * others finish with unchanged images. Jobs that must not share UNet runs do not.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../gpu-service/src/app';
import { tinyModelsDir } from '../helpers/tiny-model';
import { streamJob, type JobStream } from './sse-client';

const TOKEN = 'batching-test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
let batched: FastifyInstance;
let alone: FastifyInstance;
let base: string;

beforeAll(async () => {
  const modelsDir = await tinyModelsDir();
  const common = { modelsDir, serviceToken: TOKEN, executionProviders: ['cpu' as const], intraOpNumThreads: 1, queueMax: 16 };
  // A long window: every job of a test is submitted well inside it.
  batched = await buildApp({ ...common, maxBatch: 8, batchWindowMs: 400 });
  alone = await buildApp({ ...common, maxBatch: 1 });
  base = await batched.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await batched?.close();
  await alone?.close();
});

let n = 0;
const job = (over: Record<string, unknown>) => ({
  id: `batch-${++n}-${Math.random().toString(36).slice(2)}`,
  model: 'tiny-analytic',
  width: 64,
  height: 64,
  steps: 8,
  scheduler: 'karras',
  ...over,
});

/** Three jobs differing in prompt, negative prompt, cfg_scale, seed, batch_size and clip_skip. */
const trio = (common: Record<string, unknown>) => [
  job({ prompt: 'a red apple', cfg_scale: 5, seed: 1, ...common }),
  job({ prompt: 'a blue sky', negative_prompt: 'green grass', cfg_scale: 7.5, seed: 100, batch_size: 2, ...common }),
  job({ prompt: '(yellow:1.2) sun over a black sea', cfg_scale: 3, seed: 7, clip_skip: 2, ...common }),
];

/**
 * Start `jobs` while a blocker job (another size: never batched with them) holds the only slot, and
 * return their streams once every one of them is queued: when the blocker ends, they are what queued up
 * while the slot was busy, which the next leader takes without waiting.
 */
async function queuedBehindBlocker(url: string, jobs: Record<string, unknown>[]): Promise<JobStream[]> {
  const blocker = await streamJob(url, TOKEN, job({ prompt: 'blocker', seed: 9, sampler: 'heun', steps: 60, width: 256, height: 256 }));
  await blocker.until((evs) => evs.some((e) => e.event === 'step'));
  const streams: JobStream[] = [];
  for (const j of jobs) {
    const s = await streamJob(url, TOKEN, j);
    await s.until((evs) => evs.some((e) => e.event === 'queued'));
    streams.push(s);
  }
  const end = (await blocker.all()).at(-1)!;
  expect(end.event, JSON.stringify(end).slice(0, 300)).toBe('done');
  return streams;
}

async function runAlone(body: Record<string, unknown>) {
  const res = await alone.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: { ...body, id: `${body.id}-alone` } });
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
}

async function metricsText(): Promise<string> {
  return (await batched.inject({ method: 'GET', url: '/metrics', headers: auth })).body;
}

/** Value of a metric line, e.g. metricValue(text, 'gpu_service_batch_size_count'). */
function metricValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : NaN;
}

describe('dynamic batching', () => {
  it.each([
    ['euler_ancestral', 'none'], // i.i.d. noise per image
    ['dpmpp_2m_sde', 'fast'], // Brownian-tree noise and a multistep history; per-job previews
    ['uni_pc', 'none'], // predictor-corrector with a linear solve
  ])('%s: jobs queued together run as one batch and every image equals the unbatched one', async (sampler, preview) => {
    const jobs = trio({ sampler, preview });
    const before = await metricsText();
    const streams = await queuedBehindBlocker(base, jobs);
    const events = await Promise.all(streams.map((s) => s.all()));
    for (const [i, evs] of events.entries()) {
      const started = evs.find((e) => e.event === 'started')!;
      expect(started.data.batch).toEqual({ jobs: 3, images: 4 });
      expect(evs.filter((e) => e.event === 'step').map((e) => e.data.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      if (preview === 'fast') expect(evs.some((e) => e.event === 'preview')).toBe(true);
      expect(evs.at(-1)!.event, JSON.stringify(evs.at(-1))).toBe('done');
      const result = evs.at(-1)!.data.result;
      expect(result.id).toBe(jobs[i].id);
      const reference = await runAlone(jobs[i]);
      expect(result.images.map((im: { seed: number }) => im.seed)).toEqual(reference.images.map((im: { seed: number }) => im.seed));
      // Same receipt, same pixels: the PNG files are byte-identical.
      for (let k = 0; k < reference.images.length; k++) expect(result.images[k].b64).toBe(reference.images[k].b64);
    }
    // The two images of the batch_size-2 job differ (their own seeds), and so do the jobs.
    const images = events.flatMap((evs) => evs.at(-1)!.data.result.images.map((im: { b64: string }) => im.b64));
    expect(new Set(images).size).toBe(4);
    const after = await metricsText();
    // Two runs: the blocker's (1 image) and the batch's (4 images of 3 jobs).
    expect(metricValue(after, 'gpu_service_batch_size_count') - metricValue(before, 'gpu_service_batch_size_count')).toBe(2);
    expect(metricValue(after, 'gpu_service_batch_size_sum') - metricValue(before, 'gpu_service_batch_size_sum')).toBe(5);
    expect(metricValue(after, 'gpu_service_batch_jobs_sum') - metricValue(before, 'gpu_service_batch_jobs_sum')).toBe(4);
  });

  it('a job cancelled mid-batch ends at once; the others finish with their unbatched images', async () => {
    const common = { sampler: 'heun', steps: 200, width: 384, height: 384 };
    const jobs = trio(common);
    const streams = await queuedBehindBlocker(base, jobs);
    await streams[1].until((evs) => evs.filter((e) => e.event === 'step').length >= 2);
    const del = await fetch(`${base}/v1/jobs/${jobs[1].id}`, { method: 'DELETE', headers: auth });
    expect((await del.json()).cancelled).toBe(true);
    const cancelled = await streams[1].all();
    expect(cancelled.find((e) => e.event === 'started')!.data.batch.jobs).toBe(3);
    expect(cancelled.at(-1)!.event).toBe('error');
    expect(cancelled.at(-1)!.data.error.code).toBe('job_cancelled');
    expect(cancelled.filter((e) => e.event === 'step').length).toBeLessThan(200);
    for (const i of [0, 2]) {
      const evs = await streams[i].all();
      expect(evs.at(-1)!.event, JSON.stringify(evs.at(-1)).slice(0, 300)).toBe('done');
      // The survivors ran past the cancel point: they were not stopped with the cancelled job.
      expect(evs.filter((e) => e.event === 'step').length).toBe(200);
      const reference = await runAlone(jobs[i]);
      expect(evs.at(-1)!.data.result.images[0].b64).toBe(reference.images[0].b64);
    }
  });

  it('does not batch jobs whose maths or settings differ', async () => {
    // Queued together, so only their incompatibility keeps them apart.
    const started = async (jobs: Record<string, unknown>[]) => {
      const streams = await queuedBehindBlocker(base, jobs);
      const events = await Promise.all(streams.map((s) => s.all()));
      for (const evs of events) expect(evs.at(-1)!.event, JSON.stringify(evs.at(-1)).slice(0, 300)).toBe('done');
      return events.map((evs) => evs.find((e) => e.event === 'started')!.data.batch.jobs);
    };
    // dpm_adaptive's error norm spans the batch: never batched.
    expect(await started([job({ prompt: 'red', seed: 1, sampler: 'dpm_adaptive' }), job({ prompt: 'blue', seed: 2, sampler: 'dpm_adaptive' })])).toEqual([1, 1]);
    // Different step counts or sizes: separate runs.
    expect(await started([job({ prompt: 'red', seed: 1, sampler: 'euler', steps: 6 }), job({ prompt: 'red', seed: 1, sampler: 'euler', steps: 7 })])).toEqual([1, 1]);
    // cfg_scale 1 skips the unconditional half alone, so it does not share runs with a guided job.
    expect(await started([job({ prompt: 'red', seed: 1, sampler: 'euler', cfg_scale: 1 }), job({ prompt: 'red', seed: 1, sampler: 'euler', cfg_scale: 2 })])).toEqual([1, 1]);
    // A prompt longer than 75 tokens needs two text-encoder chunks: another token length.
    const long = Array.from({ length: 90 }, (_, i) => (i % 2 ? 'red' : 'apple')).join(' ');
    expect(await started([job({ prompt: long, seed: 1, sampler: 'euler' }), job({ prompt: 'red', seed: 1, sampler: 'euler' })])).toEqual([1, 1]);
    // img2img runs alone.
    const init = (await runAlone(job({ prompt: 'green', seed: 3, sampler: 'euler' }))).images[0].b64;
    const i2i = (seed: number) => job({ prompt: 'red', seed, sampler: 'euler', mode: 'img2img', init_image: init, strength: 0.5 });
    expect(await started([i2i(1), i2i(2)])).toEqual([1, 1]);
  });

  it('never puts more than MAX_BATCH images in one run', async () => {
    const small = await buildApp({
      modelsDir: await tinyModelsDir(),
      serviceToken: TOKEN,
      executionProviders: ['cpu'],
      intraOpNumThreads: 1,
      queueMax: 16,
      maxBatch: 4,
      batchWindowMs: 300,
    });
    try {
      const url = await small.listen({ host: '127.0.0.1', port: 0 });
      const jobs = [1, 2, 3].map((seed) => job({ prompt: 'red', seed, batch_size: 2, sampler: 'euler' }));
      const streams = await queuedBehindBlocker(url, jobs);
      const batches = await Promise.all(streams.map(async (s) => (await s.all()).find((e) => e.event === 'started')!.data.batch));
      // Three jobs of 2 images under MAX_BATCH 4: two share a run, the third runs on its own.
      expect(batches.map((b) => b.images).sort()).toEqual([2, 4, 4]);
      expect(batches.map((b) => b.jobs).sort()).toEqual([1, 2, 2]);
    } finally {
      await small.close();
    }
  });
});

describe('batching without a latency tax (issue 18)', () => {
  let service: FastifyInstance;
  let url: string;
  beforeAll(async () => {
    // A window far longer than the test's timeout: a job that waited it out would fail the test.
    service = await buildApp({ modelsDir: await tinyModelsDir(), serviceToken: TOKEN, executionProviders: ['cpu'], intraOpNumThreads: 1, queueMax: 16, maxBatch: 8, batchWindowMs: 120_000 });
    url = await service.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await service?.close();
  });

  it('a lone job on an idle service starts at once, however long the batching window', async () => {
    for (const seed of [1, 2, 3]) {
      // One client, one job at a time: nothing else is ever in the service to wait for.
      const evs = await (await streamJob(url, TOKEN, job({ prompt: 'red', seed, sampler: 'euler' }))).all();
      expect(evs.at(-1)!.event, JSON.stringify(evs.at(-1)).slice(0, 300)).toBe('done');
      expect(evs.find((e) => e.event === 'started')!.data.batch).toEqual({ jobs: 1, images: 1 });
      const reference = await runAlone(job({ prompt: 'red', seed, sampler: 'euler' }));
      expect(evs.at(-1)!.data.result.images[0].b64).toBe(reference.images[0].b64);
    }
  }, 30_000);

  it('after three jobs were in the service together, the next leader waits for the next three', async () => {
    // Runs long enough (heun, 40 steps at 192²) that jobs sent one after another arrive within one run's
    // time, the longest a batch waits.
    const round = (r: number) => [1, 2, 3].map((k) => job({ prompt: 'blue', seed: 10 * r + k, sampler: 'heun', steps: 40, width: 192, height: 192 }));
    // Round 1 queued behind a blocker: three compatible jobs in the service at once.
    const first = await Promise.all((await queuedBehindBlocker(url, round(1))).map((s) => s.all()));
    for (const evs of first) expect(evs.find((e) => e.event === 'started')!.data.batch.jobs).toBe(3);
    // Round 2 arrives one job at a time, as closed-loop clients resubmit: the leader waits for the others
    // (recent demand says three) instead of running alone and splitting the round.
    const streams: JobStream[] = [];
    for (const j of round(2)) streams.push(await streamJob(url, TOKEN, j));
    const second = await Promise.all(streams.map((s) => s.all()));
    for (const [i, evs] of second.entries()) {
      expect(evs.at(-1)!.event, JSON.stringify(evs.at(-1)).slice(0, 300)).toBe('done');
      expect(evs.find((e) => e.event === 'started')!.data.batch).toEqual({ jobs: 3, images: 3 });
      const reference = await runAlone(round(2)[i]);
      expect(evs.at(-1)!.data.result.images[0].b64).toBe(reference.images[0].b64);
    }
  }, 60_000);
});
