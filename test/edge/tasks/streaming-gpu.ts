import { vi } from 'vitest';
import { GenerationJobSchema, type GenerationJob, type GenerationResult } from '@image-api/shared/generation-job';
import { encodeBase64 } from '../../../edge/src/lib/base64';
import { FAKE_MODELS } from '../helpers/fake-gpu-service';
import { fakeGenerationResult } from '../helpers/fake-result';

/** How the fake runs the jobs submitted after it is set. */
export interface JobPlan {
  /** Queue positions announced before the job starts (e.g. [1, 0]); default none. */
  queuedPositions?: number[];
  /** A preview after every `previewEvery` steps (except the last) when the job asks for previews; default 1. */
  previewEvery?: number;
  /** Pause after emitting this step until {@link StreamingGpu.release} (or a cancel). */
  holdAtStep?: number;
  /** Fail with a server_error `internal_error` event after this step. */
  failAtStep?: number;
  /** Answer POST /v1/jobs with this status and error body instead of running the job. */
  refuse?: { status: number; code: string; headers?: Record<string, string> };
}

interface Frame {
  id: number;
  event: string;
  data: unknown;
}

/** One job's replayable log, like the GPU service's JobRecord. */
export interface FakeJob {
  job: GenerationJob;
  frames: Frame[];
  finished: boolean;
  cancelled: boolean;
}

/** The fake and what it saw. */
export interface StreamingGpu {
  plan: JobPlan;
  /** Jobs by id (deleted by {@link forget}). */
  jobs: Map<string, FakeJob>;
  /** Every job submitted, in order. */
  submitted: GenerationJob[];
  /** Last-Event-ID of every GET /v1/jobs/:id/events (null when absent). */
  eventRequests: { id: string; lastEventId: string | null }[];
  /** Ids of DELETE /v1/jobs/:id calls. */
  cancelRequests: string[];
  /** Resolves once job `id` has emitted step `step` (or ended). */
  reached(id: string, step: number): Promise<void>;
  /** Resolves once job `id` has ended. */
  ended(id: string): Promise<void>;
  /** Let held jobs go on. */
  release(): void;
  /** Drop a job, as the service does after its retention period. */
  forget(id: string): void;
  restore(): void;
}

const ERROR_404 = { error: { code: 'job_not_found', message: 'No such job.', param: 'id', type: 'not_found_error' } };

/** Colour of image i: red varies with the seed so images differ. */
export function colourFor(seed: number): [number, number, number] {
  return [200, seed % 256, 40];
}

/**
 * A fake GPU service speaking the job event protocol of the README, installed as the isolate's
 * global fetch (the Worker under test runs in the same isolate) at `baseUrl`: GET /v1/models,
 * POST /v1/jobs (JSON, or events with Accept: text/event-stream: queued… started, step per step,
 * preview per `previewEvery` steps when job.preview ≠ none, done {result with real PNGs} or error),
 * GET /v1/jobs/:id/events (replay after Last-Event-ID, then live), DELETE /v1/jobs/:id (cancel:
 * an `error` event with code job_cancelled). Closing a POST event stream cancels the job, as the
 * real service does. All routes require `Bearer <token>`.
 */
export function installStreamingGpu(baseUrl: string, token: string): StreamingGpu {
  // Workers forbid one request's I/O (streams, promises tied to them) from being touched by
  // another request, and the fake serves several requests at once (the runner's POST, a relay's
  // GET, a DELETE, the test itself): so nothing here is shared but plain data, and every wait is
  // a poll with a timer of the waiting request's own.
  let held = false;
  const poll = async (done: () => boolean) => {
    while (!done()) await new Promise((resolve) => setTimeout(resolve, 2));
  };

  const fake: StreamingGpu = {
    plan: {},
    jobs: new Map(),
    submitted: [],
    eventRequests: [],
    cancelRequests: [],
    reached: (id, step) =>
      poll(() => {
        const record = fake.jobs.get(id);
        return record !== undefined && (record.finished || lastStep(record) >= step);
      }),
    ended: (id) => poll(() => fake.jobs.get(id)?.finished === true),
    release: () => {
      held = false;
    },
    forget: (id) => void fake.jobs.delete(id),
    restore: () => spy.mockRestore(),
  };

  const emit = (record: FakeJob, event: string, data: unknown) => {
    record.frames.push({ id: record.frames.length + 1, event, data });
    if (event === 'done' || event === 'error') record.finished = true;
  };

  const run = async (record: FakeJob, plan: JobPlan) => {
    const { job } = record;
    const tick = () => new Promise((resolve) => setTimeout(resolve, 1));
    for (const position of plan.queuedPositions ?? []) {
      emit(record, 'queued', { position });
      await tick();
    }
    if (record.cancelled) return;
    emit(record, 'started', { model: job.model });
    for (let step = 1; step <= job.steps; step++) {
      await tick();
      if (record.cancelled) return;
      emit(record, 'step', { step, total: job.steps, eta_seconds: (job.steps - step) * 0.5 });
      if (job.preview !== 'none' && step < job.steps && step % (plan.previewEvery ?? 1) === 0) {
        emit(record, 'preview', { step, mime_type: 'image/jpeg', b64: encodeBase64(new TextEncoder().encode(`preview-${step}`)) });
      }
      if (step === plan.holdAtStep) {
        held = true;
        await poll(() => !held || record.cancelled);
        if (record.cancelled) return;
      }
      if (step === plan.failAtStep) {
        emit(record, 'error', { error: { code: 'internal_error', message: 'The UNet failed at step ' + step + '.', param: null, type: 'server_error' } });
        return;
      }
    }
    const result = await fakeGenerationResult(job, { engineVersion: 'fake-1.2.3', onnxruntimeVersion: '1.30.0', totalMs: 5, colour: colourFor });
    if (!record.cancelled) emit(record, 'done', { result });
  };

  const cancel = (record: FakeJob, reason: string) => {
    if (record.finished) return false;
    record.cancelled = true;
    emit(record, 'error', { error: { code: 'job_cancelled', message: `The job was cancelled: ${reason}`, param: null, type: 'invalid_request_error' } });
    return true;
  };

  /** The job's frames after `after`, pulled by the reader (in its own request), then live by polling. */
  const eventStream = (record: FakeJob, after: number, cancelOnClose: boolean) => {
    const encoder = new TextEncoder();
    let sent = after;
    let greeted = false;
    const body = new ReadableStream<Uint8Array>(
      {
        async pull(controller) {
          if (!greeted) {
            greeted = true;
            controller.enqueue(encoder.encode(': stream\n\n'));
            return;
          }
          await poll(() => record.frames.length > sent || record.finished);
          const frame = record.frames[sent];
          if (!frame) {
            controller.close();
            return;
          }
          sent = frame.id;
          controller.enqueue(encoder.encode(`id: ${frame.id}\nevent: ${frame.event}\ndata: ${JSON.stringify(frame.data)}\n\n`));
          if (frame.event === 'done' || frame.event === 'error') controller.close();
        },
        cancel() {
          if (cancelOnClose) cancel(record, 'the client disconnected');
        },
      },
      { highWaterMark: 0 },
    );
    return new Response(body, { headers: { 'content-type': 'text/event-stream; charset=utf-8' } });
  };

  const spy = vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    if (!request.url.startsWith(baseUrl)) throw new TypeError(`fetch to ${request.url} is not allowed in tests`);
    if (request.headers.get('authorization') !== `Bearer ${token}`) {
      return Response.json({ error: { code: 'invalid_service_token', message: 'bad token', param: null, type: 'authentication_error' } }, { status: 401 });
    }
    if (url.pathname === '/v1/models' && request.method === 'GET') return Response.json({ data: FAKE_MODELS });
    if (url.pathname === '/v1/jobs' && request.method === 'POST') {
      const plan = fake.plan;
      if (plan.refuse) {
        return Response.json(
          { error: { code: plan.refuse.code, message: `refused: ${plan.refuse.code}`, param: null, type: plan.refuse.status >= 500 ? 'server_error' : 'invalid_request_error' } },
          { status: plan.refuse.status, headers: plan.refuse.headers },
        );
      }
      const job = GenerationJobSchema.parse(await request.json());
      fake.submitted.push(job);
      const record: FakeJob = { job, frames: [], finished: false, cancelled: false };
      fake.jobs.set(job.id, record);
      void run(record, { ...plan });
      if ((request.headers.get('accept') ?? '').includes('text/event-stream')) return eventStream(record, 0, true);
      await fake.ended(job.id);
      const end = record.frames[record.frames.length - 1];
      return end.event === 'done'
        ? Response.json((end.data as { result: unknown }).result)
        : Response.json(end.data, { status: 500 });
    }
    const match = /^\/v1\/jobs\/([^/]+)(\/events)?$/.exec(url.pathname);
    if (match) {
      const id = decodeURIComponent(match[1]);
      const record = fake.jobs.get(id);
      if (match[2] && request.method === 'GET') fake.eventRequests.push({ id, lastEventId: request.headers.get('last-event-id') });
      if (request.method === 'DELETE') fake.cancelRequests.push(id);
      if (!record) return Response.json(ERROR_404, { status: 404 });
      if (match[2]) return eventStream(record, Number(request.headers.get('last-event-id') ?? 0) || 0, false);
      if (request.method === 'DELETE') {
        const cancelled = cancel(record, 'cancelled by the client');
        return Response.json({ id, cancelled, status: cancelled ? 'cancelled' : 'succeeded' });
      }
      return Response.json({ id, status: record.finished ? 'succeeded' : 'running', result: null, error: null });
    }
    return Response.json({ error: { code: 'not_found', message: 'no route', param: null, type: 'not_found_error' } }, { status: 404 });
  });
  return fake;
}

function lastStep(record: FakeJob): number {
  for (let i = record.frames.length - 1; i >= 0; i--) {
    const frame = record.frames[i];
    if (frame.event === 'step') return (frame.data as { step: number }).step;
  }
  return 0;
}
