/**
 * One job's life as a replayable event log (issue 5 "Progress"): (downloading…) queued → started →
 * step… (preview…) → done | error. `downloading` {bytes, total} appears when the job names an hf.co model
 * that is not in MODELS_DIR yet. Every event has a monotonically increasing id, so a client that reconnects with
 * Last-Event-ID gets what it missed; the finished job's log stays available for a retention period.
 */
import type { GenerationResult } from '@image-api/shared/generation-job';

export type JobEventName = 'downloading' | 'queued' | 'started' | 'step' | 'preview' | 'done' | 'error';
export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface JobEvent {
  id: number;
  event: JobEventName;
  data: Record<string, unknown>;
}

type Listener = (e: JobEvent) => void;

export class JobRecord {
  status: JobStatus = 'queued';
  readonly controller = new AbortController();
  readonly createdAt = Date.now();
  finishedAt?: number;
  result?: GenerationResult;
  /** Why the job failed or was cancelled (HTTP status + error body), when it did. */
  failure?: { status: number; body: Record<string, unknown> };
  private readonly log: JobEvent[] = [];
  private readonly listeners = new Set<Listener>();
  private nextId = 1;
  /** Settles when the job ends (never rejects: read `status`/`result`/the error event). */
  readonly finished: Promise<void>;
  private resolveFinished!: () => void;

  constructor(
    readonly id: string,
    readonly tenant: string,
  ) {
    this.finished = new Promise((r) => (this.resolveFinished = r));
  }

  get isFinished(): boolean {
    return this.finishedAt !== undefined;
  }

  /** Append an event and notify live listeners. Older previews and download progress are dropped from the replay log. */
  emit(event: JobEventName, data: Record<string, unknown>): JobEvent {
    const e = { id: this.nextId++, event, data };
    // The final event is final: anything a still-running step reports afterwards is dropped.
    if (this.isFinished) return e;
    if (event === 'preview' || event === 'downloading') {
      const prev = this.log.findIndex((x) => x.event === event);
      if (prev >= 0) this.log.splice(prev, 1);
    }
    this.log.push(e);
    for (const l of this.listeners) l(e);
    if (event === 'done' || event === 'error') {
      this.finishedAt = Date.now();
      this.resolveFinished();
    }
    return e;
  }

  /** The last error event's error body, if the job failed. */
  get error(): Record<string, unknown> | undefined {
    const e = [...this.log].reverse().find((x) => x.event === 'error');
    return e?.data.error as Record<string, unknown> | undefined;
  }

  /**
   * Replay events with id > afterId, then follow live ones with id > afterId until unsubscribed.
   * The live filter matters when afterId is ahead of the log (the edge relays a client's Last-Event-ID
   * as soon as it attaches, possibly before the job emitted that id): without it the events up to
   * afterId would reach the client again once emitted.
   * @returns unsubscribe function.
   */
  subscribe(afterId: number, listener: Listener): () => void {
    for (const e of this.log) if (e.id > afterId) listener(e);
    const live: Listener = (e) => {
      if (e.id > afterId) listener(e);
    };
    this.listeners.add(live);
    return () => this.listeners.delete(live);
  }
}
