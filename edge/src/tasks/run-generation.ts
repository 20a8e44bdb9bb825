import type { GenerationJobInput, GenerationResult } from '@image-api/shared/generation-job';
import type { GpuClient } from '../gpu/backend-client';
import { ApiError, backendUnavailable } from '../lib/api-error';
import type { ServerTiming } from '../lib/server-timing';
import { decodeBase64 } from '../lib/base64';
import { fitCustomMetadata, FORMAT_EXTENSIONS, imageObjectKey, storeImagesAtomically, type ImageBucket, type StoredImage } from '../storage/r2-images';
import { apiErrorFromGpuError, readGpuJobEvents, type GpuJobEvent } from './gpu-job-events';
import { imageUsage } from './image-usage';
import { RunningRowWriter } from './running-row-writer';
import { startHeartbeat, taskLeaseTiming } from './task-lease';
import type { TaskStore } from './task-store';
import type { TaskError, TaskResult, TaskRow } from './task-types';

/** Shortest time between two progress writes to the task row (D1 writes are not free). */
export const PROGRESS_WRITE_INTERVAL_MS = 1000;
/** How often a broken GPU event stream is re-opened (GET /v1/jobs/:id/events) before the job counts as lost. */
export const MAX_STREAM_RESUMES = 2;

/**
 * What the runner reports while a job runs (the live events of the GPU service, minus its end):
 * `accepted` once a GPU service admitted the job (its base URL), then the service's own events
 * (see GpuJobEvent) with their event ids.
 */
export type GenerationEvent = { event: 'accepted'; backend: string } | Exclude<GpuJobEvent, { event: 'done' } | { event: 'error' }>;

/** What the runner needs from its surroundings (all per request / per consumer batch). */
export interface RunGenerationDeps {
  store: TaskStore;
  /** One GPU service or a pool with failover (edge/src/gpu). */
  gpu: GpuClient;
  /** Where the output images go (the IMAGES R2 binding). */
  bucket: ImageBucket;
  /** Clock in unix milliseconds (default Date.now). */
  now?: () => number;
  /** Time between two lease refreshes of the task row (default: taskLeaseTiming() of task-lease.ts). */
  heartbeatMs?: number;
  /**
   * Keeps work running after the response (the Worker's `ctx.waitUntil`): the running-state writes still in
   * flight when the run ends. Absent: the run waits for them before it resolves (the Queue consumer, tests).
   */
  waitUntil?: (work: Promise<unknown>) => void;
  /** The request's phase timing (`gpu`: submit to `done`; `r2`: storing the images); lib/server-timing.ts. */
  serverTiming?: ServerTiming;
}

/** One run of one task. */
export interface RunGenerationInput {
  /** The task row (created QUEUED by the route); `job.id` must equal `task.id`. */
  task: TaskRow;
  /** The job to run; its `tenant` must be the task's. Images carry init_image/mask inline. */
  job: GenerationJobInput;
  /** Extra R2 custom metadata per image (style-specific request fields, e.g. user, quality). */
  metadata?: Record<string, string | number | undefined>;
  /** Live events (streaming routes). Called in order; must not throw (errors are logged and ignored). */
  onEvent?: (event: GenerationEvent) => void | Promise<void>;
  /**
   * Whether a failure ends the task (FAILED) — default always. Return false for a failure worth
   * another attempt (the Queue consumer: transient 5xx before its last attempt): the task goes back
   * to QUEUED with the failure as `reason` and the error is still thrown.
   */
  isFinalFailure?: (error: ApiError) => boolean;
  /** Stops reading the job's events (the GPU service cancels a job whose stream is closed). */
  signal?: AbortSignal;
  /**
   * The request field behind a GPU service error's `param` (a job field such as `loras[1].name`), so the
   * client and the task row see the field it sent (edge/src/addons/request-addons.ts). Default: unchanged.
   */
  publicParam?: (param: string | null) => string | null;
  /**
   * The route made the row with attempts = 1 (TaskStore.newRow / create with `submitting`) and this is its
   * insert, possibly still under way: the runner then submits the job at once, without a startAttempt write,
   * and no write of the row starts before the insert has landed. When the insert fails the run fails with
   * 500 `task_store_failed` once the job is answered, and nothing is stored. Absent: the row exists, and
   * the runner counts the attempt itself (refusing a task that has ended, e.g. the Queue consumer's).
   * A function is the insert not yet started: the runner starts it on the event loop's next turn, once the
   * job's POST has been issued, so the insert's own work (serializing the row for D1, ~1–2 ms of the Worker's
   * one thread on the local stack) runs while the GPU service works instead of before the job goes out.
   */
  inserted?: Promise<unknown> | (() => Promise<unknown>);
}

/** A successful run. */
export interface RunGenerationResult {
  /** The GPU service's result: images as base64 (for b64_json answers) and the receipt `params`. */
  result: GenerationResult;
  /** What the task row now holds (image keys, seeds, receipt, usage). */
  taskResult: TaskResult;
}

/**
 * THE one runner every API style uses (sync and streaming OpenAI routes, /v1/img2img, the async
 * Queue consumer):
 *  1. refuses a task that has already ended (e.g. cancelled while waiting in the Queue); from here
 *     to the end it holds the task's lease (task-lease.ts: updated_at refreshed every heartbeat), so
 *     a reader can tell a live run from one whose edge died (task-reconcile.ts);
 *  2. attempts + 1 (already in the row when the route made it so: `input.inserted`), then POST /v1/jobs
 *     with `Accept: text/event-stream` (admission errors — 400,
 *     404 model_not_found, 503 queue_full — arrive before the stream and are thrown as ApiErrors);
 *  3. records the backend, relays every event to `onEvent`, marks the task PROCESSING when the
 *     service starts it and writes progress_percent / eta_seconds at most every
 *     PROGRESS_WRITE_INTERVAL_MS; these writes do not hold up the events (running-row-writer.ts: merged
 *     into one UPDATE while another is in flight, none started once the job has ended, kept running
 *     under `deps.waitUntil`); a broken stream is resumed from the last event id
 *     (GET /v1/jobs/:id/events) up to MAX_STREAM_RESUMES times;
 *  4. on `done`: stores every image in R2 (all or nothing; keys `<tenant>/<date of the task>/<task>/<i>.<ext>`,
 *     the receipt as custom metadata) and ends the task SUCCEED with image keys, seeds, receipt,
 *     usage and backend — both before the run resolves, so an answer sent after it is durable. If the task was cancelled meanwhile the stored images are removed again;
 *  5. on failure: the task ends FAILED (or CANCELLED for `job_cancelled`) with the reason, or goes
 *     back to QUEUED when `isFinalFailure` says so, and the ApiError is thrown.
 * The caller owns rate-limit slots and the client response. Run it under `waitUntil` so a client
 * that disconnects does not stop it.
 * @throws ApiError: the GPU service's admission errors (see GpuBackendClient), 409 `task_cancelled`,
 *   the job's failure mapped by apiErrorFromGpuError, 502 `backend_stream_ended` when the stream
 *   broke for good, 500 `storage_failed`.
 */
export async function runGeneration(deps: RunGenerationDeps, input: RunGenerationInput): Promise<RunGenerationResult> {
  const { store } = deps;
  const { task, job } = input;
  if (job.id !== task.id) throw new Error(`runGeneration: job id ${job.id} is not the task id ${task.id}`);
  const isFinalFailure = input.isFinalFailure ?? (() => true);
  const now = deps.now ?? (() => Date.now());

  const inserted = typeof input.inserted === 'function' ? afterThisTurn(input.inserted) : input.inserted;
  inserted?.catch(() => {}); // awaited (and reported) by rowInserted below; never an unhandled rejection
  const untimed = store.untimed();
  const writer = new RunningRowWriter(untimed, task.id, inserted);
  // The lease's heartbeat starts once the row exists (a beat on a missing row would stop it).
  let stopHeartbeat = () => {};
  let finished = false;
  void (inserted ?? Promise.resolve()).then(
    () => {
      if (!finished) stopHeartbeat = startHeartbeat(() => untimed.touch(task.id), deps.heartbeatMs ?? taskLeaseTiming().heartbeatMs, task.id);
    },
    () => {},
  );
  try {
    let followed: FollowedJob;
    try {
      if (!inserted && !(await store.startAttempt(task.id))) throw await endedError(store, task.id);
      followed = await timedFollowJob(deps, input, now, writer);
    } catch (error) {
      await rowInserted(inserted, deps.serverTiming);
      // A re-queue leaves the row open: no running-state write may land after it.
      await writer.close();
      throw await recordFailure(store, task.id, withPublicParam(toApiError(error), input.publicParam), isFinalFailure);
    }
    await rowInserted(inserted, deps.serverTiming);
    void writer.close();
    const { result, backend } = followed;
    const taskResult = await storeTaskResult(deps, { task, job, result, backend, metadata: input.metadata, isFinalFailure });
    return { result, taskResult };
  } finally {
    finished = true;
    stopHeartbeat();
    const drained = writer.close();
    if (deps.waitUntil) deps.waitUntil(drained);
    else await drained;
  }
}

/**
 * Run `work` once the current turn of the event loop has ended: everything this turn issues (here the job's
 * fetch, reached through microtasks only) goes out first. Rejects with `work`'s error.
 */
function afterThisTurn<T>(work: () => Promise<T>): Promise<T> {
  return new Promise<void>((resolve) => setTimeout(resolve, 0)).then(work);
}

/**
 * Wait for the route's insert of the row; the wait (not the insert, which ran beside the job) is added to
 * the request's `db` phase. @throws ApiError 500 `task_store_failed` when it failed (logged).
 */
async function rowInserted(inserted: Promise<unknown> | undefined, timing: ServerTiming | undefined): Promise<void> {
  if (!inserted) return;
  try {
    await (timing ? timing.measure('db', () => inserted) : inserted);
  } catch (error) {
    console.error('inserting the task row failed', error);
    throw new ApiError(500, 'server_error', 'task_store_failed', 'Recording the task failed; nothing was kept. Please retry.');
  }
}

/** What {@link storeTaskResult} stores. */
export interface StoreTaskResultInput {
  task: TaskRow;
  /** The job's output format and guidance (the job as run, or as the task row keeps it). */
  job: Pick<GenerationJobInput, 'output' | 'guidance'>;
  /** The GPU service's result of the job. */
  result: GenerationResult;
  metadata?: RunGenerationInput['metadata'];
  isFinalFailure?: (error: ApiError) => boolean;
  /** The GPU service that ran the job, recorded with the result (TaskStore.succeed). */
  backend?: string;
}

/**
 * Step 4 of {@link runGeneration}, also used by a reader that finds a finished job of a task whose
 * runner died (task-reconcile.ts): store every image in R2 (all or nothing) and end the task SUCCEED.
 * If the task ended meanwhile (cancelled, or reconciled by someone else) the stored images are
 * removed again.
 * @throws ApiError 500 `storage_failed` (the task is FAILED or re-queued as `isFinalFailure` says),
 *   409 `task_cancelled` / `task_finished`, or the stored error of a task that ended otherwise.
 */
export async function storeTaskResult(deps: Pick<RunGenerationDeps, 'store' | 'bucket' | 'now' | 'serverTiming'>, input: StoreTaskResultInput): Promise<TaskResult> {
  const { store } = deps;
  const { task, job, result } = input;
  const now = deps.now ?? (() => Date.now());
  const isFinalFailure = input.isFinalFailure ?? (() => true);
  let taskResult: TaskResult;
  let images: StoredImage[];
  try {
    images = storedImages(task, job, result, input.metadata);
    const put = () => storeImagesAtomically(deps.bucket, images);
    await (deps.serverTiming ? deps.serverTiming.measure('r2', put) : put());
    taskResult = {
      images: images.map((image, i) => ({
        index: result.images[i].index,
        seed: result.images[i].seed,
        key: image.key,
        mime_type: image.contentType,
      })),
      receipt: result.params,
      usage: imageUsage(result.params, result.images.length),
      finished_at: now(),
    };
  } catch (error) {
    throw await recordFailure(store, task.id, toApiError(error), isFinalFailure);
  }
  if (!(await store.succeed(task.id, taskResult, input.backend))) {
    // Cancelled (or failed by someone else) while the images were being stored: keep nothing.
    await deps.bucket.delete(images.map((image) => image.key)).catch((error: unknown) => console.error('removing images of an ended task failed', error));
    throw await endedError(store, task.id);
  }
  return taskResult;
}

/**
 * {@link followJob}, its time added to the request's `gpu` phase minus the task-row writes it waited for
 * meanwhile (those are in the `db` phase already).
 */
async function timedFollowJob(deps: RunGenerationDeps, input: RunGenerationInput, now: () => number, writer: RunningRowWriter): Promise<FollowedJob> {
  const timing = deps.serverTiming;
  if (!timing) return followJob(deps, input, now, writer);
  const start = performance.now();
  const dbBefore = timing.durationOf('db');
  try {
    return await followJob(deps, input, now, writer);
  } finally {
    timing.add('gpu', performance.now() - start - (timing.durationOf('db') - dbBefore));
  }
}

/** A job followed to its end: the result and the GPU service that ran it. */
interface FollowedJob {
  result: GenerationResult;
  backend: string;
}

/**
 * Submit the job and follow its events to `done`, handing the row's running state to `writer`;
 * throws on `error` or a stream lost for good.
 */
async function followJob(deps: RunGenerationDeps, input: RunGenerationInput, now: () => number, writer: RunningRowWriter): Promise<FollowedJob> {
  const { gpu } = deps;
  const { task, job } = input;
  const submitted = await gpu.streamJob(job, input.signal);
  const backend = submitted.backendUrl;
  // The route may have recorded it in the row already (one configured backend: TaskStore.newRow).
  if (backend !== task.backend) writer.update({ backend });
  await emit(input, { event: 'accepted', backend });

  let response = submitted.response;
  let lastEventId: string | undefined;
  let lastProgressWrite = -Infinity;
  for (let resumes = 0; ; resumes++) {
    if (!response.body) throw backendUnavailable('The GPU service sent an empty event stream.', 'backend_error');
    try {
      for await (const event of readGpuJobEvents(response.body)) {
        if (event.id !== null) lastEventId = event.id;
        switch (event.event) {
          case 'done':
            return { result: event.result, backend };
          case 'error':
            throw apiErrorFromGpuError(event.error);
          case 'started':
            writer.update({ processing: true });
            break;
          case 'step':
            if (now() - lastProgressWrite >= PROGRESS_WRITE_INTERVAL_MS || event.step >= event.total) {
              lastProgressWrite = now();
              writer.update({ progress: { percent: (100 * event.step) / event.total, etaSeconds: event.eta_seconds } });
            }
            break;
          default:
            break;
        }
        await emit(input, event);
      }
    } catch (error) {
      if (error instanceof ApiError || input.signal?.aborted) throw error;
      // A network error while reading: the job may still be running there; resume below.
      console.error(`task ${task.id}: the GPU event stream broke`, error);
    }
    if (resumes >= MAX_STREAM_RESUMES || input.signal?.aborted) {
      throw backendUnavailable('The GPU service closed the job\'s event stream before the job finished.', 'backend_stream_ended');
    }
    try {
      response = (await gpu.jobEvents(task.id, { backendUrl: backend, lastEventId, signal: input.signal })).response;
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        throw backendUnavailable('The GPU service lost the job before it finished.', 'backend_stream_ended');
      }
      throw error;
    }
  }
}

async function emit(input: RunGenerationInput, event: GenerationEvent): Promise<void> {
  if (!input.onEvent) return;
  try {
    await input.onEvent(event);
  } catch (error) {
    console.error('a generation event listener failed', error);
  }
}

function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  console.error('generation failed unexpectedly', error);
  return new ApiError(500, 'server_error', 'internal_error', 'The generation failed on the edge.');
}

/** The error with its `param` renamed to the request's field (RunGenerationInput.publicParam). */
function withPublicParam(error: ApiError, publicParam: RunGenerationInput['publicParam']): ApiError {
  const param = publicParam ? publicParam(error.param) : error.param;
  if (param === error.param) return error;
  return new ApiError(error.status, error.type, error.code, error.message, param, error.headers);
}

/** The ApiError of a task that had already ended when the runner wanted to change it. */
async function endedError(store: TaskStore, id: string): Promise<ApiError> {
  const row = await store.load(id);
  const error = row?.error;
  if (row?.status === 'CANCELLED') {
    return new ApiError(409, 'invalid_request_error', 'task_cancelled', error?.message ?? 'The task was cancelled.');
  }
  if (row?.status === 'SUCCEED') return new ApiError(409, 'invalid_request_error', 'task_finished', 'The task has already finished.');
  if (error) return new ApiError(502, error.type, error.code, error.message, error.param);
  return new ApiError(409, 'invalid_request_error', 'task_finished', 'The task has already ended.');
}

/** Record a failure on the row (ended or re-queued) and return the error to throw. */
async function recordFailure(store: TaskStore, id: string, error: ApiError, isFinalFailure: (error: ApiError) => boolean): Promise<ApiError> {
  const body: TaskError = error.toBody().error;
  try {
    if (error.code === 'task_cancelled') {
      await store.cancel(id, body);
    } else if (!isFinalFailure(error)) {
      await store.requeue(id, error.message);
    } else if (!(await store.fail(id, body))) {
      const row = await store.load(id);
      if (row?.status === 'CANCELLED') return endedError(store, id);
    }
  } catch (storeError) {
    // The client still gets the real error; the row stays open (stale-task handling picks it up).
    console.error(`task ${id}: recording the failure failed`, storeError);
  }
  return error;
}

/** The R2 objects of a result: one per image with the receipt and task fields as custom metadata. */
function storedImages(task: TaskRow, job: StoreTaskResultInput['job'], result: GenerationResult, extra: RunGenerationInput['metadata']): StoredImage[] {
  const format = job.output?.format ?? 'png';
  const extension = FORMAT_EXTENSIONS[format];
  const createdAt = new Date(task.created_at);
  const params = result.params;
  return result.images.map((image) => {
    let bytes: Uint8Array;
    try {
      bytes = decodeBase64(image.b64);
    } catch {
      throw new ApiError(502, 'server_error', 'backend_error', 'The GPU service sent an image that is not valid base64.');
    }
    return {
      key: imageObjectKey({ tenant: task.tenant, taskId: task.id, index: image.index, extension, createdAt }),
      bytes,
      contentType: image.mime_type,
      customMetadata: fitCustomMetadata({
        ...extra,
        task_id: task.id,
        tenant: task.tenant,
        key_name: task.key_name,
        style: task.style,
        index: image.index,
        seed: image.seed,
        model: params.model,
        model_hash: params.model_hash,
        mode: params.mode,
        width: params.width,
        height: params.height,
        steps: params.steps,
        sampler: params.sampler,
        scheduler: params.scheduler,
        cfg_scale: params.cfg_scale,
        strength: params.strength,
        guidance: job.guidance,
        output_format: format,
        rng: params.rng,
        engine_version: params.engine_version,
        onnxruntime_version: params.onnxruntime_version,
        created_at: createdAt.toISOString(),
        // Add-ons that shaped the pixels, each with its file's SHA-256 (JSON of the receipt's lists).
        loras: params.loras?.length ? JSON.stringify(params.loras) : undefined,
        embeddings: params.embeddings?.length ? JSON.stringify(params.embeddings) : undefined,
        vae: params.vae ? JSON.stringify(params.vae) : undefined,
        // Post-processing stages that ran (hires upscaler, matting), each with its model's SHA-256.
        postprocess: params.postprocess?.length ? JSON.stringify(params.postprocess) : undefined,
        prompt: params.prompt,
        negative_prompt: params.negative_prompt,
      }),
    };
  });
}
