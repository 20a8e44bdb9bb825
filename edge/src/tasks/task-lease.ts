/**
 * Every open task (QUEUED or PROCESSING, of every API style) is leased by whoever runs it: the task
 * runner (run-generation.ts) refreshes the row's `updated_at` every heartbeat while it follows the
 * job (progress writes refresh it too). A row whose lease has lapsed (no refresh for `staleAfterMs`)
 * has lost its runner — the edge isolate crashed, was restarted or evicted, or a sync request's
 * waitUntil ran out — and the next read of it (task-reconcile.ts) reconciles it with the GPU service.
 *
 * Timing: heartbeat every TASK_HEARTBEAT_MS, stale after TASK_STALE_AFTER_MS (6 heartbeats), so a
 * dead task is reconciled by the first read after 2 minutes, well within the 5 the README promises.
 * The optional Worker var TASK_STALE_AFTER_SECONDS (an integer ≥ 2) shortens both for tests; the
 * heartbeat is then a quarter of it.
 */
import { env } from 'cloudflare:workers';
import { isFinalStatus, type TaskRow } from './task-types';

/** Default time between two lease refreshes of a running task (ms). */
export const TASK_HEARTBEAT_MS = 20_000;
/** Default age of `updated_at` after which an open task has lost its runner (ms). */
export const TASK_STALE_AFTER_MS = 2 * 60_000;

/** Heartbeat and stale threshold in force, in ms. */
export interface TaskLeaseTiming {
  heartbeatMs: number;
  staleAfterMs: number;
}

/**
 * The lease timing of this Worker: the defaults, or TASK_STALE_AFTER_SECONDS (integer seconds ≥ 2,
 * heartbeat a quarter of it) when that var is set. An invalid value is ignored with a log line.
 */
export function taskLeaseTiming(vars: { TASK_STALE_AFTER_SECONDS?: string } = env as { TASK_STALE_AFTER_SECONDS?: string }): TaskLeaseTiming {
  const text = vars?.TASK_STALE_AFTER_SECONDS;
  if (text !== undefined && text !== '') {
    const seconds = Number(text);
    if (Number.isInteger(seconds) && seconds >= 2) return { staleAfterMs: seconds * 1000, heartbeatMs: (seconds * 1000) / 4 };
    console.error(`TASK_STALE_AFTER_SECONDS=${text} is not an integer ≥ 2; using the default lease timing`);
  }
  return { heartbeatMs: TASK_HEARTBEAT_MS, staleAfterMs: TASK_STALE_AFTER_MS };
}

/**
 * An async task waits QUEUED for its Queue message: between attempts up to the longest retry delay
 * (ASYNC_RETRY_MAX_DELAY_SECONDS, 300 s, queue/retry-policy.ts), refreshed by its consumer while the
 * key's concurrency holds it back. Untouched for that long plus the stale threshold, its message is
 * taken as lost (a failed send, a local queue that did not survive a restart) and a read sends another.
 */
export const ASYNC_QUEUED_GRACE_MS = 300_000;

/** Whether the style is an async (/v3/async/*) task, run by the Queue consumer. */
export function isAsyncTask(row: Pick<TaskRow, 'style'>): boolean {
  return row.style.startsWith('async.');
}

/**
 * Whether `row` has lost its runner: open, and `updated_at` older than the stale threshold. An
 * async task waiting in the Queue (QUEUED) is held by its Queue message, not by a runner: it is
 * stale (its message lost) only after ASYNC_QUEUED_GRACE_MS more; a PROCESSING async task is stale
 * like any other (its consumer died).
 */
export function isStaleTask(row: TaskRow, nowMs: number, timing: TaskLeaseTiming = taskLeaseTiming()): boolean {
  if (isFinalStatus(row.status)) return false;
  const grace = isAsyncTask(row) && row.status === 'QUEUED' ? ASYNC_QUEUED_GRACE_MS : 0;
  return row.updated_at < nowMs - timing.staleAfterMs - grace;
}

/**
 * Refresh the task's lease every `heartbeatMs` until the returned function is called (or the task
 * ended). `touch` failures are logged: one missed beat is harmless; the task goes stale only after several.
 */
export function startHeartbeat(touch: () => Promise<boolean>, heartbeatMs: number, id: string): () => void {
  const timer = setInterval(() => {
    touch().then(
      (open) => {
        if (!open) clearInterval(timer);
      },
      (error: unknown) => console.error(`task ${id}: lease heartbeat failed`, error),
    );
  }, heartbeatMs);
  return () => clearInterval(timer);
}
