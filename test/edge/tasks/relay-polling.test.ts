import { describe, expect, it } from 'vitest';
import type { GpuClient } from '../../../edge/src/gpu/backend-client';
import { SseWriter } from '../../../edge/src/tasks/sse-writer';
import { relayTaskEvents } from '../../../edge/src/tasks/task-event-relay';
import type { TaskStore } from '../../../edge/src/tasks/task-store';
import type { TaskRow } from '../../../edge/src/tasks/task-types';
import { readEvents } from './sse-client';

const OWNER = { tenant: 'tenant-p', key_hash: 'hash-p' };

function row(overrides: Partial<TaskRow> = {}): TaskRow {
  return {
    id: 'task-p', tenant: OWNER.tenant, key_hash: OWNER.key_hash, key_name: 'k', style: 'openai.generations', status: 'PROCESSING',
    reason: null, error: null, progress_percent: 40, eta_seconds: 1, request: null, result: null, webhook_url: null,
    backend: 'http://gpu.test:8788', attempts: 1, created_at: Date.now(), updated_at: Date.now(), ...overrides,
  };
}

/** A store whose row never changes (its runner is gone), counting reads. */
function frozenStore(task: TaskRow) {
  const counts = { reads: 0 };
  const store = { get: async () => (counts.reads++, task) } as unknown as TaskStore;
  return { store, counts };
}

/** A GPU service whose job has ended: its event log replays and ends with `done`. */
function endedJobGpu() {
  const counts = { eventRequests: 0 };
  const gpu = {
    jobEvents: async () => {
      counts.eventRequests++;
      const frames = 'id: 1\nevent: started\ndata: {}\n\nid: 2\nevent: step\ndata: {"step":1,"total":2,"eta_seconds":0}\n\nid: 3\nevent: done\ndata: {"result":{}}\n\n';
      return { backendUrl: 'http://gpu.test:8788', response: new Response(frames, { headers: { 'content-type': 'text/event-stream' } }) };
    },
  } as unknown as GpuClient;
  return { gpu, counts };
}

const signing = () => ({ origin: 'https://edge.test', secret: 's', ttlSeconds: 60, nowSeconds: Date.now() / 1000 });

describe('the task event relay\'s polling is bounded', () => {
  it('a job the GPU service has ended is not asked for again (no replay of its events), and the row is read ever less often', async () => {
    const task = row();
    const { store, counts } = frozenStore(task);
    const { gpu, counts: gpuCounts } = endedJobGpu();
    const writer = new SseWriter();
    const relay = relayTaskEvents(writer, { store, gpu, owner: OWNER, task, signing, pollMs: 10, maxPollMs: 80, maxDurationMs: 600 });
    const events = await readEvents(new Response(writer.readable));
    await relay;
    // The job's events once (started, progress), not once per poll.
    expect(events.map((e) => e.event)).toEqual(['task.started', 'task.progress']);
    expect(gpuCounts.eventRequests).toBe(1);
    // 600 ms at a fixed 10 ms would be about 60 reads; waits doubling up to 80 ms make it about 11
    // (fewer on a slow machine: the bound only caps).
    expect(counts.reads).toBeGreaterThanOrEqual(2);
    expect(counts.reads).toBeLessThanOrEqual(15);
  });

  it('the stream of a task that ends meanwhile (reconciled) closes with its final event', async () => {
    const task = row();
    const { store } = frozenStore(task);
    const { gpu } = endedJobGpu();
    const writer = new SseWriter();
    const failed = row({ status: 'FAILED', reason: 'gone', error: { code: 'task_abandoned', message: 'gone', param: null, type: 'server_error' } });
    const relay = relayTaskEvents(writer, { store, gpu, owner: OWNER, task, signing, pollMs: 10, reconcile: async () => failed });
    const events = await readEvents(new Response(writer.readable));
    await relay;
    expect(events[events.length - 1]).toMatchObject({ event: 'task.failed', id: 'final' });
  });
});
