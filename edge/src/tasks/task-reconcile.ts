import type { GenerationJobInput } from '@image-api/shared/generation-job';
import type { GpuClient, GpuJobStatus } from '../gpu/backend-client';
import type { ImageBucket } from '../storage/r2-images';
import { storeTaskResult } from './run-generation';
import { isAsyncTask, isStaleTask, taskLeaseTiming, type TaskLeaseTiming } from './task-lease';
import type { TaskStore } from './task-store';
import { isFinalStatus, type TaskError, type TaskRow } from './task-types';

/** The error code of a task ended because its runner died and the job could not be recovered. */
export const TASK_ABANDONED_CODE = 'task_abandoned';

/** What {@link reconcileTask} needs. */
export interface ReconcileDeps {
  store: TaskStore;
  /** The GPU service(s): asked about the job on the backend the row records. */
  gpu: GpuClient;
  /** Where a finished job's images go (the IMAGES R2 binding). */
  bucket: ImageBucket;
  /** Clock in unix milliseconds (default Date.now). */
  now?: () => number;
  timing?: TaskLeaseTiming;
  /**
   * Async tasks only: how many submissions a task may have (ASYNC_TASK_MAX_ATTEMPTS). An async task
   * with attempts left is re-queued instead of failed, and `requeued` is called (send its Queue message).
   */
  maxAttempts?: number;
  requeued?: (row: TaskRow) => Promise<void>;
  /** Called once when this reconciliation ended the task (settle its rate-limit lease, send its webhook). */
  ended?: (row: TaskRow) => Promise<void>;
}

/** What the GPU service said about the job of a stale task. */
type JobState = { kind: 'status'; status: GpuJobStatus } | { kind: 'unknown' } | { kind: 'unreachable' } | { kind: 'not_submitted' };

/**
 * Reconcile a task whose lease has lapsed (task-lease.ts) with the GPU service, so that no task stays
 * QUEUED/PROCESSING after its runner died. Called by every read of a task (GET /v1/tasks, /v1/tasks/:id,
 * its event stream, GET /v3/async/task-result); a task that is not stale is returned as it is.
 *  1. take over the lease (TaskStore.takeOver: only one reader reconciles, and a runner whose
 *     heartbeat came back keeps its task); an async task still QUEUED has lost its Queue message:
 *     `requeued` sends another, and that is all;
 *  2. ask the backend recorded in the row for the job (GET /v1/jobs/:id):
 *     - still queued or running there: the task stays open under the refreshed lease, and a later
 *       read finds it finished;
 *     - succeeded: its images are stored and the task ends SUCCEED as if its runner had finished it;
 *     - failed or cancelled there, unknown (the service restarted or forgot it), unreachable, or never
 *       submitted: an async task with attempts left goes back to QUEUED (`requeued`); any other task
 *       ends FAILED with `task_abandoned` and a reason saying what happened.
 * @returns the row as it is now. Never throws for the GPU service's sake (an unreachable service is
 *   an answer); D1/R2 errors propagate.
 */
export async function reconcileTask(deps: ReconcileDeps, row: TaskRow): Promise<TaskRow> {
  const now = deps.now ?? (() => Date.now());
  const timing = deps.timing ?? taskLeaseTiming();
  if (!isStaleTask(row, now(), timing)) return row;
  const { store } = deps;
  if (!(await store.takeOver(row.id, row.updated_at))) return (await store.load(row.id)) ?? row;
  if (isAsyncTask(row) && row.status === 'QUEUED') {
    // Waiting for a Queue message that never came: send another (a consumer claims the task once).
    const waiting = (await store.load(row.id)) ?? row;
    await deps.requeued?.(waiting);
    return waiting;
  }

  const state = await jobState(deps.gpu, row);
  if (state.kind === 'status' && (state.status.status === 'queued' || state.status.status === 'running')) {
    return (await store.load(row.id)) ?? row;
  }
  if (state.kind === 'status' && state.status.status === 'succeeded' && state.status.result) {
    try {
      await storeTaskResult(deps, { task: row, job: storedJobOf(row), result: state.status.result, metadata: { recovered: 'true' } });
    } catch (error) {
      // Ended by someone else meanwhile, or storing failed (then the task is FAILED with the reason).
      console.error(`task ${row.id}: storing the result of a recovered job failed`, error);
    }
    const after = (await store.load(row.id)) ?? row;
    if (isFinalStatus(after.status)) await deps.ended?.(after);
    return after;
  }

  const seconds = Math.round(timing.staleAfterMs / 1000);
  const what = `The edge running this task stopped responding (no progress for ${seconds} s)${detailOf(state)}`;
  if (isAsyncTask(row) && deps.maxAttempts !== undefined && row.attempts < deps.maxAttempts) {
    if (await store.requeue(row.id, `${what}. It was queued again.`)) {
      const requeued = (await store.load(row.id)) ?? row;
      await deps.requeued?.(requeued);
      return requeued;
    }
    return (await store.load(row.id)) ?? row;
  }
  const suffix = isAsyncTask(row) ? ', and no attempts are left.' : '.';
  const error: TaskError = { code: TASK_ABANDONED_CODE, message: `${what}${suffix}`, param: null, type: 'server_error' };
  const failed = await store.fail(row.id, error);
  const after = (await store.load(row.id)) ?? row;
  if (failed) await deps.ended?.(after);
  return after;
}

async function jobState(gpu: GpuClient, row: TaskRow): Promise<JobState> {
  if (!row.backend) return { kind: 'not_submitted' };
  try {
    const status = await gpu.getJob(row.id, { backendUrl: row.backend, signal: AbortSignal.timeout(10_000) });
    return status ? { kind: 'status', status } : { kind: 'unknown' };
  } catch (error) {
    console.error(`task ${row.id}: asking the GPU service about a stale task failed`, error);
    return { kind: 'unreachable' };
  }
}

function detailOf(state: JobState): string {
  switch (state.kind) {
    case 'not_submitted':
      return ' before its job reached a GPU service';
    case 'unknown':
      return '; the GPU service no longer knows its job (it restarted or lost it)';
    case 'unreachable':
      return '; the GPU service that ran its job is unreachable';
    case 'status': {
      const message = state.status.error?.message;
      return `; the GPU service ended its job (${state.status.status}${message ? `: ${message}` : ''})`;
    }
  }
}

/** The job the route stored in request_json (`{job}` for every style; base64 inputs removed), for the output format. */
function storedJobOf(row: TaskRow): Pick<GenerationJobInput, 'output' | 'guidance'> {
  const job = (row.request as { job?: Partial<GenerationJobInput> } | null)?.job;
  return { output: job?.output, guidance: job?.guidance };
}
