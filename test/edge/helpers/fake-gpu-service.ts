import { vi } from 'vitest';
import type { BackendModel } from '@image-api/shared/api/models';
import { GenerationJobSchema, type GenerationJob, type GenerationResult } from '@image-api/shared/generation-job';
import { decodeBase64 } from '../../../edge/src/lib/base64';
import { fakeGenerationResult } from './fake-result';

/** The models the fake GPU service lists (tiny-analytic as the contract describes it). */
export const FAKE_MODELS: BackendModel[] = [
  {
    id: 'tiny-analytic',
    kind: 'checkpoint',
    capabilities: ['txt2img', 'img2img', 'inpaint'],
    native_size: [256, 256],
    max_pixels: 512 * 512,
    loaded: true,
  },
  { id: 'some-lora', kind: 'lora', capabilities: [], native_size: [512, 512], max_pixels: 512 * 512, loaded: false },
  // Add-ons as the GPU service lists them: no size of their own, the architecture they fit, or why they cannot be used.
  { id: 'styles/ink', kind: 'lora', capabilities: [], native_size: [0, 0], max_pixels: 0, loaded: false, architecture: 'Stable Diffusion 1.x' },
  { id: 'old-lora', kind: 'lora', capabilities: [], native_size: [0, 0], max_pixels: 0, loaded: false, error: 'pickle files are never loaded' },
  { id: 'easynegative', kind: 'textualinversion', capabilities: [], native_size: [0, 0], max_pixels: 0, loaded: false, architecture: 'Stable Diffusion 1.x' },
  { id: 'vae-ft-mse', kind: 'vae', capabilities: [], native_size: [0, 0], max_pixels: 0, loaded: false },
  // A broken folder, as the GPU service lists one: size 0 and the load error.
  { id: 'broken-model', kind: 'checkpoint', capabilities: [], native_size: [0, 0], max_pixels: 0, loaded: false, error: 'model_index.json: Unexpected token' },
];

/** The download rules the fake reports in GET /v1/models (as HF_ALLOWED_REPOS=acme/*, HF_MAX_MODEL_BYTES=8e9). */
export const FAKE_HF_DOWNLOADS = { allowed_repos: ['acme/*'], max_model_bytes: 8_000_000_000, models_dir_max_bytes: 0 };

/** What the fake does with POST /v1/jobs. */
export type JobBehaviour =
  | { kind: 'ok' }
  | { kind: 'status'; status: number; body: unknown; headers?: Record<string, string> }
  | { kind: 'connection_refused' };

/** A running fake: the jobs it received and a switch for its behaviour. */
export interface FakeGpuService {
  jobs: GenerationJob[];
  /** What GET /v1/models lists (a copy of FAKE_MODELS; tests may add models). */
  models: BackendModel[];
  modelListCalls: number;
  behaviour: JobBehaviour;
  /** Bytes of every PNG it returned, in order. */
  images: Uint8Array[];
  /** Jobs received but not yet answered (see hold). */
  inFlight: number;
  /** Hold every POST /v1/jobs until the returned function is called. */
  hold(): () => void;
  restore(): void;
}

/**
 * The job's events as the GPU service streams them (docs/architecture.md): started, one step per
 * sampling step, done {result}; each with an increasing id.
 */
function eventStreamOf(result: GenerationResult, steps: number): Response {
  const frames = [`id: 1\nevent: started\ndata: {}\n\n`];
  for (let step = 1; step <= steps; step++) {
    frames.push(`id: ${step + 1}\nevent: step\ndata: ${JSON.stringify({ step, total: steps, eta_seconds: 0 })}\n\n`);
  }
  frames.push(`id: ${steps + 2}\nevent: done\ndata: ${JSON.stringify({ result })}\n\n`);
  return new Response(frames.join(''), { headers: { 'content-type': 'text/event-stream; charset=utf-8' } });
}

/**
 * Replace the isolate's global fetch (the Worker under test runs in the same isolate) with a fake
 * GPU service at `baseUrl`: GET /v1/models, POST /v1/jobs (validated against GenerationJobSchema,
 * answering real PNGs of the job's size, as JSON or, with `Accept: text/event-stream`, as the
 * service's event stream), both requiring `Bearer <token>`. Any other URL is refused
 * as the sandbox would (no network in tests).
 */
export function installFakeGpuService(baseUrl: string, token: string): FakeGpuService {
  const fake: FakeGpuService = {
    jobs: [],
    models: [...FAKE_MODELS],
    modelListCalls: 0,
    behaviour: { kind: 'ok' },
    images: [],
    inFlight: 0,
    hold: () => {
      let open!: () => void;
      gate = new Promise<void>((resolve) => (open = resolve));
      return () => {
        gate = null;
        open();
      };
    },
    restore: () => spy.mockRestore(),
  };
  let gate: Promise<void> | null = null;
  const spy = vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    if (!request.url.startsWith(baseUrl)) throw new TypeError(`fetch to ${request.url} is not allowed in tests`);
    if (request.headers.get('authorization') !== `Bearer ${token}`) {
      return Response.json({ error: { code: 'unauthorized', message: 'bad token', param: null, type: 'authentication_error' } }, { status: 401 });
    }
    if (url.pathname === '/v1/models' && request.method === 'GET') {
      fake.modelListCalls += 1;
      return Response.json({ data: fake.models, hf_downloads: FAKE_HF_DOWNLOADS });
    }
    if (url.pathname === '/v1/jobs' && request.method === 'POST') {
      const behaviour = fake.behaviour;
      if (behaviour.kind === 'connection_refused') throw new TypeError('Network connection lost.');
      if (behaviour.kind === 'status') return Response.json(behaviour.body, { status: behaviour.status, headers: behaviour.headers });
      const job = GenerationJobSchema.parse(await request.json());
      fake.jobs.push(job);
      if (gate) {
        fake.inFlight += 1;
        await gate;
        fake.inFlight -= 1;
      }
      const result = await fakeGenerationResult(job);
      for (const image of result.images) fake.images.push(decodeBase64(image.b64));
      if ((request.headers.get('accept') ?? '').includes('text/event-stream')) return eventStreamOf(result, job.steps);
      return Response.json(result);
    }
    return Response.json({ error: { code: 'not_found', message: 'no route', param: null, type: 'not_found_error' } }, { status: 404 });
  });
  return fake;
}
