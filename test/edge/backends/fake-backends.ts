import type { BackendModel } from '@image-api/shared/api/models';
import type { GenerationJobInput, GenerationResult } from '@image-api/shared/generation-job';

/** How one fake backend answers POST /v1/jobs. */
export type FakeBackendMode =
  | 'ok'
  /** fetch rejects, as for a refused connection (probes too: the host is down). */
  | 'refuse'
  /** Probes answer, but POST /v1/jobs fails like a connection reset (died while accepting). */
  | 'refuse_jobs'
  /** 503 queue_full with Retry-After: 2. */
  | 'busy'
  /** The event stream starts, then breaks (the backend died mid-job). */
  | 'die_mid_stream'
  /** 400 naming `width` (a request no backend would run). */
  | 'invalid';

/** One fake GPU service, addressed by its base URL. */
export interface FakeBackend {
  url: string;
  mode: FakeBackendMode;
  /** GET /readyz answer: 200 (ready) or 503; `queueDepth` is reported in the body. */
  ready: boolean;
  queueDepth: number;
  /** Jobs it reports as running (added to the depth by the pool). */
  running: number;
  /** Has /readyz at all (false: 404, so /healthz is used). */
  hasReadyz: boolean;
  /** Every request it received, as "METHOD /path". */
  requests: string[];
  /** Job ids it ran to completion (POST /v1/jobs accepted and answered). */
  ran: string[];
  /** Job ids it knows (for GET/DELETE /v1/jobs/:id). */
  known: Set<string>;
  /** Jobs currently held (see hold). */
  held: number;
  /** Hold every accepted job until the returned function is called. */
  hold(): () => void;
}

const TINY: BackendModel = {
  id: 'tiny-analytic',
  kind: 'checkpoint',
  capabilities: ['txt2img'],
  native_size: [64, 64],
  max_pixels: 512 * 512,
  loaded: true,
};

function resultFor(job: GenerationJobInput): GenerationResult {
  return {
    id: job.id,
    images: [{ index: 0, seed: job.seed, mime_type: 'image/png', b64: 'iVBORw0KGgo=' }],
    params: {
      model: job.model,
      model_hash: 'sha256:fake',
      mode: 'txt2img',
      prompt: job.prompt,
      negative_prompt: '',
      width: job.width,
      height: job.height,
      batch_size: 1,
      seed: job.seed,
      seeds: [job.seed],
      steps: job.steps,
      sampler: 'euler',
      scheduler: 'normal',
      cfg_scale: 7,
      rng: 'cpu',
      engine_version: 'fake-0',
      onnxruntime_version: '0.0.0',
    },
    timings: { total_ms: 1 },
  } as GenerationResult;
}

/**
 * Several fake GPU services behind one `fetch` function (pass it to GpuBackendPool, or install it as
 * the global fetch). Each answers /readyz, /healthz, /v1/models, POST /v1/jobs (JSON or SSE),
 * GET /v1/jobs/:id[/events] and DELETE /v1/jobs/:id, and requires `Bearer <token>`. Other hosts
 * are refused (no network in tests).
 */
export function fakeBackends(urls: string[], token: string): { backends: FakeBackend[]; fetch: typeof fetch } {
  const backends = urls.map((url): FakeBackend => {
    let gate: Promise<void> | null = null;
    const backend: FakeBackend = {
      url,
      mode: 'ok',
      ready: true,
      queueDepth: 0,
      running: 0,
      hasReadyz: true,
      requests: [],
      ran: [],
      known: new Set(),
      held: 0,
      hold: () => {
        let open!: () => void;
        gate = new Promise<void>((resolve) => (open = resolve));
        return () => {
          gate = null;
          open();
        };
      },
    };
    Object.defineProperty(backend, 'gate', { get: () => gate });
    return backend;
  });

  const fetchImpl = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    const backend = backends.find((b) => request.url.startsWith(`${b.url}/`));
    if (!backend) throw new TypeError(`fetch to ${request.url} is not allowed in tests`);
    backend.requests.push(`${request.method} ${url.pathname}`);
    if (backend.mode === 'refuse') throw new TypeError('Network connection lost.');
    if (url.pathname === '/healthz') return Response.json({ ok: true });
    if (request.headers.get('authorization') !== `Bearer ${token}`) {
      return Response.json({ error: { code: 'unauthorized', message: 'bad token', param: null, type: 'authentication_error' } }, { status: 401 });
    }
    if (url.pathname === '/readyz') {
      if (!backend.hasReadyz) return Response.json({ error: { code: 'not_found', message: 'no route', param: null, type: 'not_found_error' } }, { status: 404 });
      // The GPU service's shape (gpu-service/src/routes/operations.ts).
      const load = { queue_depth: backend.queueDepth, running: backend.running, queue_max: 8, slots: 1 };
      return Response.json(
        backend.ready
          ? { ready: true, ...load }
          : { ready: false, ...load, error: { code: 'no_model', message: 'no model can load', param: null, type: 'server_error' } },
        { status: backend.ready ? 200 : 503, headers: backend.ready ? {} : { 'retry-after': '5' } },
      );
    }
    if (url.pathname === '/v1/models') return Response.json({ data: [TINY] });
    if (url.pathname === '/v1/jobs' && request.method === 'POST') {
      if (backend.mode === 'refuse_jobs') throw new TypeError('Network connection lost.');
      if (backend.mode === 'invalid') {
        return Response.json({ error: { code: 'invalid_parameter', message: 'bad width', param: 'width', type: 'invalid_request_error' } }, { status: 400 });
      }
      if (backend.mode === 'busy') {
        return Response.json(
          { error: { code: 'queue_full', message: 'queue full', param: null, type: 'server_error' } },
          { status: 503, headers: { 'retry-after': '2' } },
        );
      }
      const job = (await request.json()) as GenerationJobInput;
      backend.known.add(job.id);
      const gate = (backend as unknown as { gate: Promise<void> | null }).gate;
      if ((request.headers.get('accept') ?? '').includes('text/event-stream')) {
        const encoder = new TextEncoder();
        const dies = backend.mode === 'die_mid_stream';
        const body = new ReadableStream<Uint8Array>({
          async start(controller) {
            // Our side aborting the fetch errors the body with the abort reason, as workerd does.
            request.signal.addEventListener('abort', () => controller.error(request.signal.reason));
            controller.enqueue(encoder.encode(`id: 1\nevent: started\ndata: {}\n\n`));
            if (dies) {
              controller.error(new TypeError('Network connection lost.'));
              return;
            }
            if (gate) {
              backend.held += 1;
              await gate;
              backend.held -= 1;
            }
            backend.ran.push(job.id);
            controller.enqueue(encoder.encode(`id: 2\nevent: done\ndata: ${JSON.stringify({ result: resultFor(job) })}\n\n`));
            controller.close();
          },
        });
        return new Response(body, { headers: { 'content-type': 'text/event-stream; charset=utf-8' } });
      }
      if (gate) {
        backend.held += 1;
        await gate;
        backend.held -= 1;
      }
      backend.ran.push(job.id);
      return Response.json(resultFor(job));
    }
    const jobMatch = /^\/v1\/jobs\/([^/]+)(\/events)?$/.exec(url.pathname);
    if (jobMatch) {
      const id = decodeURIComponent(jobMatch[1]);
      if (!backend.known.has(id)) {
        return Response.json({ error: { code: 'job_not_found', message: 'no such job', param: null, type: 'not_found_error' } }, { status: 404 });
      }
      if (jobMatch[2]) {
        const after = request.headers.get('last-event-id') ?? '0';
        return new Response(`id: 2\nevent: done\ndata: {"after":"${after}"}\n\n`, { headers: { 'content-type': 'text/event-stream' } });
      }
      if (request.method === 'DELETE') return Response.json({ id, cancelled: true, status: 'cancelled' });
      return Response.json({ id, status: backend.ran.includes(id) ? 'succeeded' : 'running', result: null, error: null });
    }
    return Response.json({ error: { code: 'not_found', message: 'no route', param: null, type: 'not_found_error' } }, { status: 404 });
  };
  return { backends, fetch: fetchImpl as typeof fetch };
}
