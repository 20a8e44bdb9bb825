/**
 * Ownership of an async task while a Queue consumer runs it, on the task layer's `tasks` table
 * (edge/migrations/0001_tasks.sql). TaskStore (edge/src/tasks/task-store.ts) has no compare-and-set
 * on updated_at, which these need, so they are small SQL functions here:
 *
 * - A consumer CLAIMS a task before running it: QUEUED → PROCESSING, or a PROCESSING row whose
 *   updated_at is older than the stale deadline (its consumer died) → PROCESSING again. Exactly one of
 *   several deliveries of the same message wins the conditional UPDATE.
 * - While it runs, the consumer TOUCHES updated_at every ASYNC_HEARTBEAT_MS (the runner's own progress
 *   writes touch it too), so a live task never looks stale.
 * - A PROCESSING row untouched for ASYNC_STALE_AFTER_MS has lost its consumer (isolate evicted,
 *   crash, deploy): a reader RECOVERS it — back to QUEUED for another attempt while attempts remain,
 *   else FAILED with a reason — so no task stays PROCESSING forever.
 */

/** How often a running consumer refreshes its task's updated_at. */
export const ASYNC_HEARTBEAT_MS = 30_000;
/** A PROCESSING task untouched this long is considered abandoned (10 heartbeats). */
export const ASYNC_STALE_AFTER_MS = 5 * 60_000;

/** SQL for "this row is stale": PROCESSING and not touched since `staleBefore`. */
const STALE = "status = 'PROCESSING' AND updated_at < ?";

/**
 * Claim task `id` for one consumer run. @returns true when this caller now owns it (the row is
 * PROCESSING with updated_at = now); false when it is PROCESSING under a live consumer or has ended.
 */
export async function claimTask(db: D1Database, id: string, nowMs: number): Promise<boolean> {
  const result = await db
    .prepare(`UPDATE tasks SET status = 'PROCESSING', updated_at = ? WHERE id = ? AND (status = 'QUEUED' OR (${STALE}))`)
    .bind(nowMs, id, nowMs - ASYNC_STALE_AFTER_MS)
    .run();
  return result.meta.changes > 0;
}

/** Refresh updated_at of an open task (the heartbeat). @returns false when the task has ended. */
export async function touchTask(db: D1Database, id: string, nowMs: number): Promise<boolean> {
  const result = await db
    .prepare("UPDATE tasks SET updated_at = ? WHERE id = ? AND status IN ('QUEUED', 'PROCESSING')")
    .bind(nowMs, id)
    .run();
  return result.meta.changes > 0;
}

/** What {@link recoverStaleTask} did. */
export type StaleRecovery = 'requeued' | 'failed' | null;

/**
 * If task `id` is stale (see the module comment), end the abandoned run: back to QUEUED with a reason
 * when `attempts < maxAttempts` (the caller then sends a new Queue message), else FAILED with the
 * error body as error_json. Guarded by the same stale condition, so a live consumer is never
 * overtaken and two readers cannot both recover it.
 * @returns 'requeued', 'failed', or null when the task was not stale.
 */
export async function recoverStaleTask(db: D1Database, id: string, nowMs: number, maxAttempts: number): Promise<StaleRecovery> {
  const minutes = Math.round(ASYNC_STALE_AFTER_MS / 60_000);
  const requeueReason = `The worker running this task stopped responding (no progress for ${minutes} minutes); it was queued again.`;
  const requeued = await db
    .prepare(`UPDATE tasks SET status = 'QUEUED', progress_percent = 0, eta_seconds = NULL, reason = ?, updated_at = ? WHERE id = ? AND ${STALE} AND attempts < ?`)
    .bind(requeueReason, nowMs, id, nowMs - ASYNC_STALE_AFTER_MS, maxAttempts)
    .run();
  if (requeued.meta.changes > 0) return 'requeued';
  const reason = `The worker running this task stopped responding (no progress for ${minutes} minutes) and no attempts are left.`;
  const error = { code: 'task_abandoned', message: reason, param: null, type: 'server_error' };
  const failed = await db
    .prepare(`UPDATE tasks SET status = 'FAILED', eta_seconds = NULL, reason = ?, error_json = ?, updated_at = ? WHERE id = ? AND ${STALE}`)
    .bind(reason, JSON.stringify(error), nowMs, id, nowMs - ASYNC_STALE_AFTER_MS)
    .run();
  return failed.meta.changes > 0 ? 'failed' : null;
}
