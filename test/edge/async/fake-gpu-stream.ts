import { vi } from 'vitest';
import type { BackendModel } from '@image-api/shared/api/models';
import { GenerationJobSchema, type GenerationJob, type GenerationResult } from '@image-api/shared/generation-job';
import { fakeGenerationResult } from '../helpers/fake-result';

/** The models this fake lists: the tiny checkpoint, an SDXL-sized one, a LoRA and a VAE. */
export const ASYNC_FAKE_MODELS: BackendModel[] = [
  { id: 'tiny-analytic', kind: 'checkpoint', capabilities: ['txt2img', 'img2img', 'inpaint'], native_size: [256, 256], max_pixels: 512 * 512, loaded: true },
  { id: 'xl-base', kind: 'checkpoint', capabilities: ['txt2img'], native_size: [1024, 1024], max_pixels: 1024 * 1024, loaded: false },
  { id: 'detail-lora', kind: 'lora', capabilities: [], native_size: [512, 512], max_pixels: 512 * 512, loaded: false },
  { id: 'vae-ft-mse', kind: 'vae', capabilities: [], native_size: [512, 512], max_pixels: 512 * 512, loaded: false },
];

/** The hf.co download rules this fake reports in GET /v1/models (HF_ALLOWED_REPOS `acme/*`, no size caps). */
export const ASYNC_FAKE_HF_DOWNLOADS = { allowed_repos: ['acme/*'], max_model_bytes: 0, models_dir_max_bytes: 0 };

/**
 * What the fake does with one POST /v1/jobs:
 * - ok: stream started, steps, done with real PNGs (colour from the seed);
 * - status: answer that status and JSON body before any stream (admission errors: 400, 503 queue_full);
 * - refused: the connection fails;
 * - die: stream started and half the steps, then the connection ends without `done`; the service
 *   has forgotten the job afterwards (GET /v1/jobs/:id/events → 404), as after a crash.
 */
export type StreamBehaviour =
  | { kind: 'ok' }
  | { kind: 'status'; status: number; body: unknown; headers?: Record<string, string> }
  | { kind: 'refused' }
  | { kind: 'die' };

/** A running fake GPU service. */
export interface FakeGpuStream {
  /** Every job received (validated), in order. */
  jobs: GenerationJob[];
  /** Behaviours for the next POST /v1/jobs calls, consumed in order; when empty, `fallback`. */
  script: StreamBehaviour[];
  fallback: StreamBehaviour;
  restore(): void;
}

/** RGB of image `seed` (differs per seed so images can be told apart). */
export function colourOfSeed(seed: number): [number, number, number] {
  return [200, seed % 256, (seed >> 8) % 256];
}

function errorBody(code: string, message: string, type = 'not_found_error') {
  return { error: { code, message, param: null, type } };
}

function resultOf(job: GenerationJob): Promise<GenerationResult> {
  return fakeGenerationResult(job, { colour: colourOfSeed });
}

function frame(id: number, event: string, data: unknown): string {
  return `id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * Replace the isolate's global fetch with a GPU service at `baseUrl` that streams job events
 * (docs/architecture.md): GET /readyz, /v1/models (with ASYNC_FAKE_HF_DOWNLOADS), POST /v1/jobs (SSE), GET /v1/jobs/:id/events (always 404:
 * this fake keeps no jobs). Every call needs `Bearer <token>`; any other URL is refused.
 */
export function installFakeGpuStream(baseUrl: string, token: string): FakeGpuStream {
  const fake: FakeGpuStream = { jobs: [], script: [], fallback: { kind: 'ok' }, restore: () => spy.mockRestore() };
  const spy = vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    if (!request.url.startsWith(baseUrl)) throw new TypeError(`fetch to ${request.url} is not allowed in tests`);
    if (url.pathname === '/readyz' || url.pathname === '/healthz') return Response.json({ ok: true, queue_depth: 0 });
    if (request.headers.get('authorization') !== `Bearer ${token}`) {
      return Response.json(errorBody('unauthorized', 'bad token', 'authentication_error'), { status: 401 });
    }
    if (url.pathname === '/v1/models' && request.method === 'GET') return Response.json({ data: ASYNC_FAKE_MODELS, hf_downloads: ASYNC_FAKE_HF_DOWNLOADS });
    if (url.pathname === '/v1/jobs' && request.method === 'POST') {
      const behaviour = fake.script.shift() ?? fake.fallback;
      if (behaviour.kind === 'refused') throw new TypeError('Network connection lost.');
      if (behaviour.kind === 'status') return Response.json(behaviour.body, { status: behaviour.status, headers: behaviour.headers });
      const job = GenerationJobSchema.parse(await request.json());
      fake.jobs.push(job);
      const frames = [frame(1, 'started', {})];
      const steps = behaviour.kind === 'die' ? Math.max(1, Math.floor(job.steps / 2)) : job.steps;
      for (let step = 1; step <= steps; step++) frames.push(frame(step + 1, 'step', { step, total: job.steps, eta_seconds: job.steps - step }));
      if (behaviour.kind === 'ok') frames.push(frame(steps + 2, 'done', { result: await resultOf(job) }));
      return new Response(frames.join(''), { headers: { 'content-type': 'text/event-stream; charset=utf-8' } });
    }
    if (/^\/v1\/jobs\/[^/]+(\/events)?$/.test(url.pathname)) {
      return Response.json(errorBody('job_not_found', 'No such job.'), { status: 404 });
    }
    return Response.json(errorBody('not_found', 'no route'), { status: 404 });
  });
  return fake;
}
