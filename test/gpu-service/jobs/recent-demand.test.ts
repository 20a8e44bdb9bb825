import { describe, expect, it } from 'vitest';
import { MIN_HORIZON_MS, RecentDemand } from '../../../gpu-service/src/jobs/recent-demand';

/** `n` jobs of `key` enter, run together for `ms`, and leave. */
function runTogether(demand: RecentDemand, clock: { now: number }, key: string, n: number, ms: number): void {
  for (let i = 0; i < n; i++) demand.enter(key);
  clock.now += ms;
  demand.ran(key, ms);
  for (let i = 0; i < n; i++) demand.leave(key);
}

describe('RecentDemand: the most compatible jobs in the service at once lately', () => {
  it('one job at a time never asks a batch to wait for a second', () => {
    const clock = { now: 0 };
    const demand = new RecentDemand(() => clock.now);
    for (let i = 0; i < 5; i++) {
      demand.enter('k');
      expect(demand.peak('k')).toBe(1);
      clock.now += 10;
      demand.ran('k', 10);
      demand.leave('k');
      clock.now += 1;
    }
    expect(demand.lastRunMs('k')).toBe(10);
    expect(demand.peak('other')).toBe(0);
    expect(demand.lastRunMs('other')).toBeUndefined();
  });

  it('four closed-loop clients keep asking for four; when one client is left, three runs later it asks for one', () => {
    const clock = { now: 0 };
    const demand = new RecentDemand(() => clock.now);
    for (let round = 0; round < 3; round++) {
      runTogether(demand, clock, 'k', 4, 20);
      clock.now += 1;
      demand.enter('k'); // the first of the next round
      expect(demand.peak('k')).toBe(4);
      demand.leave('k');
    }
    const asked: number[] = [];
    for (let i = 0; i < 4; i++) {
      demand.enter('k');
      asked.push(demand.peak('k'));
      clock.now += 20;
      demand.ran('k', 20);
      demand.leave('k');
    }
    // The interval in which the four left, then RUNS_REMEMBERED runs of one.
    expect(asked).toEqual([4, 4, 4, 1]);
  });

  it('forgets a long run’s level after the horizon (2 × the run, at least MIN_HORIZON_MS)', () => {
    const clock = { now: 0 };
    const demand = new RecentDemand(() => clock.now);
    runTogether(demand, clock, 'k', 3, 5000);
    clock.now += 9000;
    demand.enter('k');
    expect(demand.peak('k')).toBe(3);
    demand.leave('k');
    clock.now += 1001; // 10 s after the three left
    demand.enter('k');
    expect(demand.peak('k')).toBe(1);
    demand.leave('k');
    clock.now += Math.max(MIN_HORIZON_MS, 10_000) + 1;
    expect(demand.peak('k')).toBe(0);
  });

  it('keeps keys apart', () => {
    const demand = new RecentDemand(() => 0);
    demand.enter('a');
    demand.enter('a');
    demand.enter('b');
    expect(demand.peak('a')).toBe(2);
    expect(demand.peak('b')).toBe(1);
  });
});
