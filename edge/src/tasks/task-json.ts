import type { Seed } from '@image-api/shared/seed';
import type { ImageUsage } from '@image-api/shared/api/openai-images';
import type { GenerationParams } from '@image-api/shared/generation-job';
import { signFileLink } from '../storage/signed-links';
import type { TaskError, TaskResult, TaskRow, TaskStatus } from './task-types';

/** How to sign the links of a task's images. */
export interface LinkSigning {
  /** Public origin of the edge, e.g. "https://api.example.com". */
  origin: string;
  /** LINK_SIGNING_SECRET. */
  secret: string;
  /** Lifetime of each link, seconds. */
  ttlSeconds: number;
  /** Now, unix seconds. */
  nowSeconds: number;
}

/** One output image of a finished task as clients see it. */
export interface TaskImageData {
  /** Signed /v1/files link, valid until `expires_at`. */
  url: string;
  /** Unix seconds. */
  expires_at: number;
  seed: Seed;
  index: number;
  mime_type: string;
}

/**
 * GET /v1/tasks/:id (and each item of GET /v1/tasks): the task's state. Times are unix seconds.
 * `data`, `receipt` and `usage` are set once the task SUCCEED; `error` when it FAILED or was
 * CANCELLED; `reason` is the last failure also while a retried task waits again.
 */
export interface TaskJson {
  id: string;
  object: 'task';
  style: string;
  status: TaskStatus;
  progress_percent: number;
  eta_seconds: number | null;
  reason: string | null;
  error: TaskError | null;
  attempts: number;
  created_at: number;
  updated_at: number;
  data: TaskImageData[] | null;
  receipt: GenerationParams | null;
  usage: ImageUsage | null;
}

/** Signed links for every image of a finished task, in batch order. */
export async function signedTaskImages(result: TaskResult, signing: LinkSigning): Promise<TaskImageData[]> {
  return Promise.all(
    result.images.map(async (image) => {
      const link = await signFileLink({ ...signing, key: image.key });
      return { url: link.url, expires_at: link.expiresAt, seed: image.seed, index: image.index, mime_type: image.mime_type };
    }),
  );
}

/** The public JSON of a task row. */
export async function taskJson(row: TaskRow, signing: LinkSigning): Promise<TaskJson> {
  const result = row.status === 'SUCCEED' ? row.result : null;
  return {
    id: row.id,
    object: 'task',
    style: row.style,
    status: row.status,
    progress_percent: row.progress_percent,
    eta_seconds: row.eta_seconds,
    reason: row.reason,
    error: row.status === 'FAILED' || row.status === 'CANCELLED' ? row.error : null,
    attempts: row.attempts,
    created_at: Math.floor(row.created_at / 1000),
    updated_at: Math.floor(row.updated_at / 1000),
    data: result ? await signedTaskImages(result, signing) : null,
    receipt: result?.receipt ?? null,
    usage: result?.usage ?? null,
  };
}

/** Event id of a task's final event: after it there is nothing more (a resume with it gets 204). */
export const FINAL_EVENT_ID = 'final';

/**
 * The final event of an ended task, built from its row: `task.completed` {data: [{url, seed, …}],
 * receipt, usage} or `task.failed` {status: FAILED|CANCELLED, error}.
 */
export async function finalTaskEvent(row: TaskRow, signing: LinkSigning): Promise<{ event: string; data: Record<string, unknown> }> {
  if (row.status === 'SUCCEED' && row.result) {
    return {
      event: 'task.completed',
      data: {
        type: 'task.completed',
        task_id: row.id,
        status: row.status,
        data: await signedTaskImages(row.result, signing),
        receipt: row.result.receipt,
        usage: row.result.usage,
      },
    };
  }
  const error: TaskError = row.error ?? {
    code: 'task_failed',
    message: row.reason ?? 'The task failed.',
    param: null,
    type: 'server_error',
  };
  return { event: 'task.failed', data: { type: 'task.failed', task_id: row.id, status: row.status, error } };
}
