import type { AsyncTaskResult, AsyncTaskStatus } from '@image-api/shared/api/async-tasks';
import { signFileLink } from '../storage/signed-links';
import type { TaskRow, TaskStatus } from '../tasks/task-types';
import { AsyncTaskRecordSchema } from './async-task-record';

/** Task layer status → Novita status. A cancelled task reads FAILED (its reason says it was cancelled). */
export const ASYNC_STATUS_NAMES: Readonly<Record<TaskStatus, AsyncTaskStatus>> = {
  QUEUED: 'TASK_STATUS_QUEUED',
  PROCESSING: 'TASK_STATUS_PROCESSING',
  SUCCEED: 'TASK_STATUS_SUCCEED',
  FAILED: 'TASK_STATUS_FAILED',
  CANCELLED: 'TASK_STATUS_FAILED',
};

/** How to sign image links: LINK_SIGNING_SECRET, lifetime and now. */
export interface AsyncLinkSigning {
  secret: string;
  ttlSeconds: number;
  nowSeconds: number;
  /** Origin of the links; default: the origin stored with the task at submit time. */
  origin?: string;
}

/**
 * The GET /v3/async/task-result body (also the webhook body) of one async task row:
 * - task: id, type, Novita status, reason ("" unless it failed or is waiting for a retry), eta
 *   (whole seconds, 0 when unknown or ended), progress_percent;
 * - images (SUCCEED only): a signed /v1/files link per image, valid `image_url_ttl` seconds from now,
 *   its format (extra.response_image_type) and seed;
 * - extra.seed: the base seed (image i used seed + i); extra.debug_info: submit and completion times
 *   (unix ms), GPU submissions so far (attempts), and the reproducibility receipt once it SUCCEED.
 * @throws Error when the row is not an async task (request_json not an AsyncTaskRecord).
 */
export async function asyncTaskResult(row: TaskRow, signing: AsyncLinkSigning): Promise<AsyncTaskResult> {
  const record = AsyncTaskRecordSchema.parse(row.request);
  const status = ASYNC_STATUS_NAMES[row.status];
  const ended = row.status === 'SUCCEED' || row.status === 'FAILED' || row.status === 'CANCELLED';
  const images = [];
  if (row.status === 'SUCCEED' && row.result) {
    for (const image of row.result.images) {
      const link = await signFileLink({
        origin: signing.origin ?? record.origin,
        key: image.key,
        secret: signing.secret,
        ttlSeconds: signing.ttlSeconds,
        nowSeconds: signing.nowSeconds,
      });
      images.push({ image_url: link.url, image_url_ttl: signing.ttlSeconds, image_type: record.response_image_type, seed: image.seed });
    }
  }
  return {
    task: {
      task_id: row.id,
      task_type: record.task_type,
      status,
      reason: row.status === 'SUCCEED' ? '' : (row.reason ?? ''),
      eta: ended || row.eta_seconds === null ? 0 : Math.max(0, Math.ceil(row.eta_seconds)),
      progress_percent: row.status === 'SUCCEED' ? 100 : row.progress_percent,
    },
    images,
    extra: {
      seed: record.job.seed,
      debug_info: {
        submit_time_ms: row.created_at,
        complete_time_ms: ended ? (row.result?.finished_at ?? row.updated_at) : null,
        attempts: row.attempts,
        receipt: row.result ? { ...row.result.receipt } : null,
      },
    },
  };
}
