import { z } from 'zod';
import { GenerationResultSchema, type GenerationResult } from '@image-api/shared/generation-job';
import { ApiError } from '../lib/api-error';
import { parseSse } from './sse';
import { TaskErrorSchema, type TaskError } from './task-types';

/**
 * One event of a GPU service job stream (docs/architecture.md, "GPU service": POST /v1/jobs with Accept: text/event-stream,
 * GET /v1/jobs/:id/events). `id` is the service's event id (a decimal string; pass it back as
 * Last-Event-ID to resume), null when the frame had none.
 * - queued: waiting in the service's queue at `position` (0 = next);
 * - started: the sampler began;
 * - step: step `step` of `total` finished; `eta_seconds` is the service's estimate;
 * - preview: a preview image of the current latents (base64 `b64`, usually image/jpeg);
 * - done: the job finished, with the full result (images as base64 + the receipt `params`);
 * - error: the job failed or was cancelled (`error.code` "job_cancelled").
 */
export type GpuJobEvent =
  | { id: string | null; event: 'queued'; position: number | null }
  | { id: string | null; event: 'started' }
  | { id: string | null; event: 'step'; step: number; total: number; eta_seconds: number | null }
  | { id: string | null; event: 'preview'; step: number | null; mime_type: string; b64: string }
  | { id: string | null; event: 'done'; result: GenerationResult }
  | { id: string | null; event: 'error'; error: TaskError };

const QueuedSchema = z.object({ position: z.number().int().nonnegative().nullable().catch(null) });
const StepSchema = z.object({ step: z.number().int(), total: z.number().int().positive(), eta_seconds: z.number().nullable().catch(null) });
const PreviewSchema = z.object({ step: z.number().int().nullable().catch(null), mime_type: z.string(), b64: z.string() });
const DoneSchema = z.object({ result: GenerationResultSchema });
const ErrorSchema = z.object({ error: TaskErrorSchema });

/** Code of the GPU service's error event for a cancelled job. */
export const GPU_JOB_CANCELLED = 'job_cancelled';

/**
 * Parse a GPU service event stream into typed events. Frames with unknown names or malformed data
 * are skipped (logged), except a malformed `done`/`error`, which becomes an `error` event with code
 * `backend_error` — the job's end must never be lost.
 */
export async function* readGpuJobEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<GpuJobEvent> {
  // The service ends the stream right after `done` / `error`: its end is read in the background (parseSse).
  for await (const message of parseSse(body, { isLast: (m) => m.event === 'done' || m.event === 'error' })) {
    let data: unknown;
    try {
      data = JSON.parse(message.data);
    } catch {
      data = undefined;
    }
    const id = message.id;
    switch (message.event) {
      case 'queued': {
        const parsed = QueuedSchema.safeParse(data);
        if (parsed.success) yield { id, event: 'queued', position: parsed.data.position };
        break;
      }
      case 'started':
        yield { id, event: 'started' };
        break;
      case 'step': {
        const parsed = StepSchema.safeParse(data);
        if (parsed.success) yield { id, event: 'step', ...parsed.data };
        else console.warn('GPU service step event not understood', message.data.slice(0, 200));
        break;
      }
      case 'preview': {
        const parsed = PreviewSchema.safeParse(data);
        if (parsed.success) yield { id, event: 'preview', ...parsed.data };
        break;
      }
      case 'done': {
        const parsed = DoneSchema.safeParse(data);
        if (parsed.success) yield { id, event: 'done', result: parsed.data.result };
        else yield { id, event: 'error', error: malformedEnd('done') };
        return;
      }
      case 'error': {
        const parsed = ErrorSchema.safeParse(data);
        yield { id, event: 'error', error: parsed.success ? parsed.data.error : malformedEnd('error') };
        return;
      }
      default:
        break;
    }
  }
}

function malformedEnd(event: string): TaskError {
  console.error(`GPU service sent a malformed "${event}" event`);
  return { code: 'backend_error', message: 'The GPU service sent a result the edge could not read.', param: null, type: 'server_error' };
}

/**
 * The edge's answer to a job that failed inside the GPU service (an `error` event, which carries
 * no HTTP status): `job_cancelled` → 409 `task_cancelled`; invalid_request_error → 400 with the
 * service's code and param; not_found_error → 404; anything else (server_error: `internal_error`,
 * `deadline_exceeded`, …) → 502 keeping the service's code and message.
 */
export function apiErrorFromGpuError(error: TaskError): ApiError {
  if (error.code === GPU_JOB_CANCELLED || error.code === 'task_cancelled') {
    return new ApiError(409, 'invalid_request_error', 'task_cancelled', error.message, null);
  }
  if (error.type === 'invalid_request_error') return new ApiError(400, error.type, error.code, error.message, error.param);
  if (error.type === 'not_found_error') return new ApiError(404, error.type, error.code, error.message, error.param);
  return new ApiError(502, 'server_error', error.code, error.message, error.param);
}
