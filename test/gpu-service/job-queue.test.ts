/** The tenant-fair bounded queue, on its own: dispatch order, bounds, aborts. */
import { describe, expect, it } from 'vitest';
import { JobQueue } from '../../gpu-service/src/jobs/job-queue';
import { ServiceError } from '../../gpu-service/src/lib/errors';

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('JobQueue', () => {
  it('serves tenants round-robin and each tenant FIFO, so a burst cannot starve another tenant', async () => {
    const q = new JobQueue(1, 100);
    const order: string[] = [];
    const gate = deferred();
    const first = q.run(() => gate.promise, { tenant: 'a' }); // occupies the slot
    const runs: Promise<void>[] = [];
    for (const name of ['a1', 'a2', 'a3', 'a4']) runs.push(q.run(async () => void order.push(name), { tenant: 'a' }));
    for (const name of ['b1', 'b2']) runs.push(q.run(async () => void order.push(name), { tenant: 'b' }));
    runs.push(q.run(async () => void order.push('c1'), { tenant: 'c' }));
    gate.resolve();
    await Promise.all([first, ...runs]);
    expect(order).toEqual(['a1', 'b1', 'c1', 'a2', 'b2', 'a3', 'a4']);
  });

  it('refuses work with queue_full (503, Retry-After) when queueMax jobs wait', async () => {
    const q = new JobQueue(1, 2);
    const gate = deferred();
    const running = q.run(() => gate.promise, { tenant: 't' });
    const w1 = q.run(async () => 1, { tenant: 't' });
    const w2 = q.run(async () => 2, { tenant: 'u' });
    await expect(q.run(async () => 3, { tenant: 'v' })).rejects.toSatisfy(
      (e: unknown) => e instanceof ServiceError && e.status === 503 && e.code === 'queue_full' && Number(e.headers['retry-after']) >= 1,
    );
    gate.resolve();
    expect(await Promise.all([running, w1, w2])).toEqual([undefined, 1, 2]);
    expect(q.depth).toBe(0);
    expect(q.active).toBe(0);
  });

  it('removes an aborted waiting job without running it, and reports its position', async () => {
    const q = new JobQueue(1, 5);
    const gate = deferred();
    const running = q.run(() => gate.promise, { tenant: 't' });
    const ac = new AbortController();
    const positions: number[] = [];
    let ran = false;
    const waiting = q.run(async () => void (ran = true), { tenant: 't', signal: ac.signal }, (p) => positions.push(p));
    expect(positions).toEqual([1]);
    ac.abort(new Error('gone'));
    await expect(waiting).rejects.toThrow('gone');
    expect(q.depth).toBe(0);
    gate.resolve();
    await running;
    expect(ran).toBe(false);
    expect(q.active).toBe(0);
  });

  it('runs up to `concurrency` jobs at once', async () => {
    const q = new JobQueue(2, 5);
    let live = 0;
    let peak = 0;
    const work = async () => {
      live++;
      peak = Math.max(peak, live);
      await new Promise((r) => setTimeout(r, 10));
      live--;
    };
    await Promise.all(Array.from({ length: 6 }, (_, i) => q.run(work, { tenant: `t${i % 2}` })));
    expect(peak).toBe(2);
  });
});
