/**
 * The task-row writes of a running job that its answer does not wait for: which GPU service took it, that
 * it started, its progress. The runner (run-generation.ts) hands them to a {@link RunningRowWriter}
 * instead of awaiting each one between two GPU events: changes that arrive while a write is in flight are
 * merged into the next one (one UPDATE for backend + PROCESSING + progress instead of three), and none
 * starts after {@link RunningRowWriter.close}.
 *
 * Why that loses nothing: every write is TaskStore's guarded UPDATE on an open row, so one that lands after
 * the task ended (SUCCEED / FAILED / CANCELLED) changes nothing, and the ending write itself carries what
 * matters of them (TaskStore.succeed sets the backend, progress 100). Before a write that leaves the row
 * open (a re-queue) the runner waits for the write in flight ({@link RunningRowWriter.close}'s promise),
 * so a late "PROCESSING" cannot follow it.
 */
import type { TaskStore, RunningChange } from './task-store';

/**
 * How long the first status/progress write waits (ms; the backend is written at once): the PROCESSING and
 * progress of a job that ends sooner are never written separately (its ending write has them), which keeps
 * one D1 write per short job off the Worker (on the local stack every D1 write takes the Worker's one
 * thread for ~5 ms). A reader sees a started job QUEUED for at most this much longer.
 */
export const RUNNING_WRITE_DELAY_MS = 50;

export class RunningRowWriter {
  private pending: RunningChange = {};
  private dirty = false;
  private inFlight: Promise<void> | null = null;
  private closed = false;

  /**
   * @param store the table (untimed: these writes are not the request's critical path).
   * @param ready resolves once the row exists (the route's insert); no write starts before it, none at all
   *   when it rejects (the runner reports that failure itself).
   */
  constructor(
    private readonly store: TaskStore,
    private readonly id: string,
    private readonly ready: Promise<unknown> = Promise.resolve(),
    private readonly delayMs: number = RUNNING_WRITE_DELAY_MS,
  ) {}

  /** Record a change; written soon, merged with any other that arrives meanwhile. Ignored after close. */
  update(change: RunningChange): void {
    if (this.closed) return;
    if (change.backend !== undefined) this.pending.backend = change.backend;
    if (change.processing) this.pending.processing = true;
    if (change.progress !== undefined) this.pending.progress = change.progress;
    this.dirty = true;
    this.inFlight ??= this.drain();
  }

  /** No write starts from now on. @returns the write in flight, if any (never rejects: failures are logged). */
  close(): Promise<void> {
    this.closed = true;
    return this.inFlight ?? Promise.resolve();
  }

  private async drain(): Promise<void> {
    try {
      await this.ready;
    } catch {
      this.closed = true;
    }
    let waited = false;
    while (this.dirty && !this.closed) {
      // The backend is written at once (DELETE /v1/tasks/:id, the event relay and a reconciliation find the
      // job by it); the first status/progress write waits, so a short job's ending write is its only one.
      if (!waited && this.pending.backend === undefined && this.delayMs > 0) {
        waited = true;
        await new Promise((resolve) => setTimeout(resolve, this.delayMs));
        if (this.closed) break;
      }
      const change = this.pending;
      this.pending = {};
      this.dirty = false;
      try {
        await this.store.updateRunning(this.id, change);
      } catch (error) {
        // A lost progress write is harmless: the next one, or the task's end, writes the row again.
        console.error(`task ${this.id}: writing its running state failed`, error);
      }
    }
    this.inFlight = null;
  }
}
