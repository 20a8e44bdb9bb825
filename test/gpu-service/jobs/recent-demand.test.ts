import { describe, expect, it } from 'vitest';
import { MIN_HORIZON_MS, RecentDemand } from '../../../gpu-service/src/jobs/recent-demand';

describe('RecentDemand: the most compatible jobs in the service at once lately', () => {
  it('one job at a time never asks a batch to wait for a second', () => {
    let now = 0;
    const demand = new RecentDemand(() => now);
    for (let i = 0; i < 5; i++) {
      demand.enter('k');
      expect(demand.peak('k')).toBe(1);
      now += 10;
      demand.leave('k');
      now += 1;
    }
    expect(demand.peak('other')).toBe(0);
  });

  it('remembers N jobs that ran together until the horizon passes, then forgets them', () => {
    let now = 0;
    const demand = new RecentDemand(() => now);
    for (let i = 0; i < 4; i++) demand.enter('k');
    now += 5000; // one long run: the level held until the jobs left
    demand.ran('k', 5000);
    for (let i = 0; i < 4; i++) demand.leave('k');
    now += 1;
    demand.enter('k');
    expect(demand.peak('k')).toBe(4);
    // The horizon is 2 × the last run (10 s here), not MIN_HORIZON_MS.
    now += 9000;
    expect(demand.peak('k')).toBe(4);
    now += 1500;
    expect(demand.peak('k')).toBe(1);
    demand.leave('k');
    now += Math.max(MIN_HORIZON_MS, 10_000) + 1;
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
