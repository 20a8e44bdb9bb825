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

  it('take() moves accepted tagged waiters into the caller\'s slot, oldest first, leaving the rest queued', async () => {
    const q = new JobQueue(1, 10);
    const gate = deferred();
    const ran: string[] = [];
    let takenSlotWork = false;
    const leader = q.run(async () => {
      await gate.promise;
      // The leader takes compatible jobs (tags 'x') while it holds the slot, up to two.
      let room = 2;
      const taken = q.take((tag) => tag === 'x' && room-- > 0);
      ran.push(`leader took ${taken.length}`);
    }, { tenant: 'a' });
    const results = [
      q.run(async () => void (takenSlotWork = true), { tenant: 'b', tag: 'x', whenTaken: async () => ran.push('x1 taken') }),
      q.run(async () => void ran.push('y1 own slot'), { tenant: 'c', tag: 'y', whenTaken: async () => ran.push('y1 taken') }),
      q.run(async () => void (takenSlotWork = true), { tenant: 'b', tag: 'x', whenTaken: async () => ran.push('x2 taken') }),
      q.run(async () => void ran.push('x3 own slot'), { tenant: 'd', tag: 'x', whenTaken: async () => ran.push('x3 taken') }),
      q.run(async () => void ran.push('untagged own slot'), { tenant: 'e' }),
    ];
    expect(q.depth).toBe(5);
    gate.resolve();
    await Promise.all([leader, ...results]);
    expect(takenSlotWork).toBe(false);
    expect(ran.slice(0, 3)).toEqual(['leader took 2', 'x1 taken', 'x2 taken']);
    // The others ran in their own slots afterwards, round-robin as usual.
    expect(ran.slice(3).sort()).toEqual(['untagged own slot', 'x3 own slot', 'y1 own slot']);
    expect(q.depth).toBe(0);
    expect(q.active).toBe(0);
  });

  it('take() skips waiters whose signal was aborted', async () => {
    const q = new JobQueue(1, 10);
    const gate = deferred();
    const ac = new AbortController();
    let taken: unknown[] = [];
    const leader = q.run(async () => {
      await gate.promise;
      taken = q.take(() => true);
    }, { tenant: 'a' });
    const waiting = q.run(async () => 1, { tenant: 'b', tag: 'x', signal: ac.signal, whenTaken: async () => 2 });
    ac.abort(new Error('gone'));
    await expect(waiting).rejects.toThrow('gone');
    gate.resolve();
    await leader;
    expect(taken).toEqual([]);
  });
});
