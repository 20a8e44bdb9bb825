/**
 * Ownership of an async task while a Queue consumer runs it, on the task layer's `tasks` table and
 * its lease (edge/src/tasks/task-lease.ts: the runner refreshes updated_at every heartbeat).
 *
 * - A consumer CLAIMS a task before running it: QUEUED → PROCESSING, or a PROCESSING row whose lease
 *   has lapsed (its consumer died) → PROCESSING again. Exactly one of several deliveries of the same
 *   message wins the conditional UPDATE.
 * - A PROCESSING row whose lease lapsed is reconciled by the next read (tasks/task-reconcile.ts):
 *   finished from the GPU service's result, back to QUEUED for another attempt while attempts
 *   remain, else FAILED with a reason — so no task stays PROCESSING forever.
 */
import { TASK_HEARTBEAT_MS, TASK_STALE_AFTER_MS, taskLeaseTiming } from '../tasks/task-lease';

/** How often a running task's lease is refreshed by default (the runner's heartbeat). */
export const ASYNC_HEARTBEAT_MS = TASK_HEARTBEAT_MS;
/** A PROCESSING task untouched this long (by default) is considered abandoned. */
export const ASYNC_STALE_AFTER_MS = TASK_STALE_AFTER_MS;

/** SQL for "this row is stale": PROCESSING and not touched since `staleBefore`. */
const STALE = "status = 'PROCESSING' AND updated_at < ?";

/**
 * Claim task `id` for one consumer run. @returns true when this caller now owns it (the row is
 * PROCESSING with updated_at = now); false when it is PROCESSING under a live consumer or has ended.
 */
export async function claimTask(db: D1Database, id: string, nowMs: number, staleAfterMs = taskLeaseTiming().staleAfterMs): Promise<boolean> {
  const result = await db
    .prepare(`UPDATE tasks SET status = 'PROCESSING', updated_at = ? WHERE id = ? AND (status = 'QUEUED' OR (${STALE}))`)
    .bind(nowMs, id, nowMs - staleAfterMs)
    .run();
  return result.meta.changes > 0;
}
