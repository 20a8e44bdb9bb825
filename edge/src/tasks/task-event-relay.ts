import type { GpuClient } from '../gpu/backend-client';
import { ApiError } from '../lib/api-error';
import { readGpuJobEvents, type GpuJobEvent } from './gpu-job-events';
import type { SseWriter } from './sse-writer';
import { FINAL_EVENT_ID, finalTaskEvent, type LinkSigning } from './task-json';
import type { TaskStore } from './task-store';
import { isFinalStatus, type TaskError, type TaskOwner, type TaskRow } from './task-types';

/** How soon the relay first re-reads the task row while there is nothing to relay. */
export const RELAY_POLL_MS = 500;
/** The wait between two reads of the row doubles while nothing happens, up to this (ms). */
export const RELAY_MAX_POLL_MS = 5_000;
/** Longest one relay stream stays open; the client resumes with Last-Event-ID after it. */
export const RELAY_MAX_DURATION_MS = 10 * 60_000;

/** Options of {@link relayTaskEvents}. */
export interface RelayTaskEventsOptions {
  store: TaskStore;
  gpu: GpuClient;
  owner: TaskOwner;
  /** The task as the route read it (owner already checked). */
  task: TaskRow;
  /** The client's Last-Event-ID (a GPU service event id), if any. */
  lastEventId?: string;
  /** Link signing for the final event (called when it is sent, so links start fresh). */
  signing: () => LinkSigning;
  pollMs?: number;
  /** Longest wait between two reads of the row (default RELAY_MAX_POLL_MS). */
  maxPollMs?: number;
  maxDurationMs?: number;
  /**
   * Called on every re-read row: reconciles a task whose runner died (task-reconcile.ts) so the
   * stream ends with its final event instead of waiting on a job nobody follows. Default: none.
   */
  reconcile?: (row: TaskRow) => Promise<TaskRow>;
  /** Clock in unix milliseconds (default Date.now). */
  now?: () => number;
}

/**
 * The public name and payload of a GPU service event: queued → `task.queued` {position},
 * started → `task.started`, step → `task.progress` {step, total, eta_seconds, progress_percent},
 * preview → `task.preview` {step, mime_type, b64}. Every payload has `type` and `task_id`.
 */
export function publicTaskEvent(taskId: string, event: Exclude<GpuJobEvent, { event: 'done' } | { event: 'error' }>): { event: string; data: Record<string, unknown> } {
  const base = (type: string) => ({ type, task_id: taskId });
  switch (event.event) {
    case 'queued':
      return { event: 'task.queued', data: { ...base('task.queued'), position: event.position } };
    case 'started':
      return { event: 'task.started', data: base('task.started') };
    case 'step':
      return {
        event: 'task.progress',
        data: {
          ...base('task.progress'),
          step: event.step,
          total: event.total,
          eta_seconds: event.eta_seconds,
          progress_percent: Math.floor((100 * event.step) / event.total),
        },
      };
    case 'preview':
      return { event: 'task.preview', data: { ...base('task.preview'), step: event.step, mime_type: event.mime_type, b64: event.b64 } };
  }
}

/**
 * GET /v1/tasks/:id/events: write the task's events to `writer` until its final event, then close.
 * - An ended task: its final event from the row (`task.completed` / `task.failed`, id "final"),
 *   whether or not the GPU service still remembers the job.
 * - A running task: the GPU service's events for the job (GET /v1/jobs/:id/events on the backend
 *   recorded in the row, Last-Event-ID passed through, so event ids are the service's and a
 *   reconnecting client gets what it missed), renamed by {@link publicTaskEvent}. When the job ends
 *   there, the relay waits for the runner to finish the row (images stored) and sends the row's
 *   final event, so links and receipt are the stored ones.
 * - A task not (yet) at a GPU service (waiting in the Queue, or between retries): one
 *   `task.queued` {position: null}, then the row is polled. A new attempt resets the event ids (the
 *   service numbers each submission from 1).
 * - Once the GPU service has said the attempt's job ended (or no longer knows it), its events are not
 *   asked for again (they would only replay); the row is polled until the runner ends it, and
 *   `reconcile` ends a task whose runner died, so the stream closes with the task's final event.
 * Polling is bounded: the row is re-read after `pollMs`, the wait doubling while nothing happens up
 * to `maxPollMs` (reset by every relayed event), and never past `maxDurationMs`.
 * Stops when the client goes away (the upstream request is aborted) or after `maxDurationMs`
 * (the client reconnects). Never throws: failures end the stream, which the client may resume.
 */
export async function relayTaskEvents(writer: SseWriter, options: RelayTaskEventsOptions): Promise<void> {
  const { store, gpu } = options;
  const now = options.now ?? (() => Date.now());
  const pollMs = options.pollMs ?? RELAY_POLL_MS;
  const maxPollMs = Math.max(pollMs, options.maxPollMs ?? RELAY_MAX_POLL_MS);
  let wait = pollMs;
  const deadline = now() + (options.maxDurationMs ?? RELAY_MAX_DURATION_MS);
  const signal = writer.goneSignal;
  let row: TaskRow | null = options.task;
  let lastEventId = options.lastEventId === FINAL_EVENT_ID ? undefined : options.lastEventId;
  let attempt = row.attempts;
  let sentQueued = false;
  // The GPU service said this attempt's job ended (done/error) or does not know it: do not ask again
  // until the row moves (a new attempt, a new backend, progress: a retry racing the old job's record).
  let attemptOver = false;
  let rowState = '';
  try {
    while (row && !writer.clientGone && now() < deadline) {
      if (isFinalStatus(row.status)) {
        const final = await finalTaskEvent(row, options.signing());
        writer.send(final.event, final.data, FINAL_EVENT_ID);
        return;
      }
      if (row.attempts !== attempt) {
        // A new submission numbers its events from 1 again; the first one (0 → 1) keeps the client's id.
        if (attempt > 0) lastEventId = undefined;
        attempt = row.attempts;
      }
      const state = `${row.attempts}|${row.backend}|${row.status}|${row.progress_percent}`;
      if (state !== rowState) attemptOver = false;
      rowState = state;
      let relayed = false;
      let jobEnded: TaskError | 'done' | null = null;
      if (row.backend && !attemptOver) {
        try {
          const stream = await gpu.jobEvents(row.id, { backendUrl: row.backend, lastEventId, signal });
          if (stream.response.body) {
            for await (const event of readGpuJobEvents(stream.response.body)) {
              if (writer.clientGone) break;
              if (event.event === 'done' || event.event === 'error') {
                jobEnded = event.event === 'done' ? 'done' : event.error;
                break;
              }
              if (event.id !== null) lastEventId = event.id;
              const named = publicTaskEvent(row.id, event);
              writer.send(named.event, named.data, event.id ?? undefined);
              relayed = true;
            }
          }
        } catch (error) {
          // 404: the service does not know the job (forgotten after it ended, or lost in a restart).
          if (signal.aborted) return;
          if (error instanceof ApiError && error.status === 404) attemptOver = true;
          else console.error(`task ${row.id}: relaying GPU events failed`, error);
        }
        if (jobEnded !== null) attemptOver = true;
      }
      if (!relayed && !sentQueued && row.status === 'QUEUED' && jobEnded === null) {
        writer.send('task.queued', { type: 'task.queued', task_id: row.id, position: null });
        sentQueued = true;
      }
      const pause = relayed ? pollMs : wait;
      wait = relayed ? pollMs : Math.min(maxPollMs, wait * 2);
      await sleep(Math.min(pause, Math.max(0, deadline - now())), signal);
      row = await store.get(row.id, options.owner);
      if (row && options.reconcile) row = await options.reconcile(row);
    }
  } catch (error) {
    if (!signal.aborted) console.error(`task ${options.task.id}: event relay failed`, error);
  } finally {
    writer.close();
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
