/**
 * RunningRowWriter (edge/src/tasks/running-row-writer.ts): the running-state writes of a task row that the
 * answer does not wait for. Changes arriving while a write is in flight go out merged in the next one; the
 * first status write waits its delay and is dropped when the job ends first; nothing starts after close,
 * nor before the row's insert, nor at all when the insert failed. Checked on the real table (D1).
 */
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { RunningRowWriter } from '../../../edge/src/tasks/running-row-writer';
import { TaskStore, type RunningChange } from '../../../edge/src/tasks/task-store';

const OWNER = { tenant: 'tenant-w', key_hash: 'e'.repeat(64) };

/** The table, with every updateRunning call recorded and each one held until `release()` lets it through. */
function recordingStore() {
  const store = new TaskStore(env.DB);
  const calls: RunningChange[] = [];
  const gates: Array<() => void> = [];
  const original = store.updateRunning.bind(store);
  store.updateRunning = async (id, change) => {
    calls.push(structuredClone(change));
    await new Promise<void>((resolve) => gates.push(resolve));
    return original(id, change);
  };
  const release = async () => {
    for (let i = 0; i < 50 && gates.length === 0; i++) await new Promise((r) => setTimeout(r, 2));
    gates.shift()?.();
    await new Promise((r) => setTimeout(r, 5));
  };
  return { store, calls, release };
}

async function newTask(store: TaskStore) {
  return store.create({ id: crypto.randomUUID(), owner: OWNER, key_name: 'writer-test', style: 'openai.generations', request: {} });
}

describe('RunningRowWriter', () => {
  it('writes the backend at once and merges what arrives meanwhile into one next write', async () => {
    const { store, calls, release } = recordingStore();
    const task = await newTask(store);
    const writer = new RunningRowWriter(store, task.id, Promise.resolve(), 0);
    writer.update({ backend: 'http://gpu-a.test' });
    await release(); // hold the first write until the next changes are in
    expect(calls).toEqual([{ backend: 'http://gpu-a.test' }]);
    writer.update({ processing: true });
    writer.update({ progress: { percent: 25, etaSeconds: 3 } });
    writer.update({ progress: { percent: 50.9, etaSeconds: 2 } });
    await release();
    await writer.close();
    expect(calls).toEqual([{ backend: 'http://gpu-a.test' }, { processing: true, progress: { percent: 50.9, etaSeconds: 2 } }]);
    expect(await store.load(task.id)).toMatchObject({ status: 'PROCESSING', backend: 'http://gpu-a.test', progress_percent: 50, eta_seconds: 2 });
  });

  it('a job that ends within the delay never writes its status separately', async () => {
    const { store, calls } = recordingStore();
    const task = await newTask(store);
    const writer = new RunningRowWriter(store, task.id, Promise.resolve(), 30);
    writer.update({ processing: true });
    writer.update({ progress: { percent: 100, etaSeconds: 0 } });
    await writer.close();
    expect(calls).toEqual([]);
    expect(await store.load(task.id)).toMatchObject({ status: 'QUEUED', progress_percent: 0 });
  });

  it('a longer job writes its status once the delay has passed', async () => {
    const { store, calls, release } = recordingStore();
    const task = await newTask(store);
    const writer = new RunningRowWriter(store, task.id, Promise.resolve(), 10);
    writer.update({ processing: true });
    await new Promise((r) => setTimeout(r, 40));
    await release();
    await writer.close();
    expect(calls).toEqual([{ processing: true }]);
    expect(await store.load(task.id)).toMatchObject({ status: 'PROCESSING' });
  });

  it('waits for the insert, and writes nothing when the insert failed', async () => {
    const { store, calls, release } = recordingStore();
    const task = store.newRow({ id: crypto.randomUUID(), owner: OWNER, key_name: 'writer-test', style: 'openai.generations', request: {} }, { submitting: true });
    let inserted!: () => void;
    const writer = new RunningRowWriter(store, task.id, new Promise<void>((resolve) => (inserted = resolve)), 0);
    writer.update({ backend: 'http://gpu-b.test' });
    await new Promise((r) => setTimeout(r, 10));
    expect(calls).toEqual([]);
    await store.insert(task);
    inserted();
    await release();
    await writer.close();
    expect(await store.load(task.id)).toMatchObject({ backend: 'http://gpu-b.test', attempts: 1 });

    const failing = new RunningRowWriter(store, 'no-such-task', Promise.reject(new Error('D1 down')), 0);
    failing.update({ backend: 'http://gpu-c.test' });
    await failing.close();
    await new Promise((r) => setTimeout(r, 10));
    expect(calls).toHaveLength(1);
  });

  it('nothing starts after close, and an ended task is not changed by a late write', async () => {
    const { store, calls, release } = recordingStore();
    const task = await newTask(store);
    const writer = new RunningRowWriter(store, task.id, Promise.resolve(), 0);
    writer.update({ backend: 'http://gpu-a.test' });
    await store.fail(task.id, { code: 'x', message: 'failed meanwhile', param: null, type: 'server_error' });
    const closed = writer.close();
    writer.update({ processing: true });
    await release();
    await closed;
    expect(calls).toEqual([{ backend: 'http://gpu-a.test' }]);
    expect(await store.load(task.id)).toMatchObject({ status: 'FAILED', backend: null });
  });
});
