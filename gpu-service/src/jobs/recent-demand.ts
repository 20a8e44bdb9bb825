/**
 * How many compatible jobs were in the service at once lately, per batch key: the batcher's evidence that
 * waiting for more jobs will pay (issue 18).
 *
 * A batch leader waits (at most BATCH_WINDOW_MS) only until its batch holds as many jobs as this peak:
 * - one client sending one job at a time never has a second job in the service, so the peak is 1 and
 *   its jobs start at once, with no latency tax;
 * - N closed-loop clients (each resubmitting when its result arrives) had N jobs in the service during
 *   the last run, so the leader of the next round waits the millisecond or two until the other N − 1
 *   arrive, instead of running alone and splitting the round into smaller, slower runs;
 * - when the load goes away the peak decays after the horizon, so a lone job stops waiting.
 * "Lately" is the horizon max(MIN_HORIZON_MS, 2 × the key's last run time) before now, counting the
 * level that held until each departure: the last couple of runs, whatever a run costs on this model
 * and device.
 */

/** The shortest memory of past concurrency, in ms. */
export const MIN_HORIZON_MS = 1000;

interface KeyDemand {
  /** Jobs of this key in the service now (queued, forming, running). */
  current: number;
  /** (time in ms, jobs in the service at that moment), at every arrival and departure, oldest first. */
  samples: { at: number; jobs: number }[];
  /** Wall time of the key's last UNet run, in ms. */
  lastRunMs: number;
}

export class RecentDemand {
  private readonly keys = new Map<string, KeyDemand>();

  /** @param now a clock in ms (performance.now by default), injectable for tests. */
  constructor(private readonly now: () => number = () => performance.now()) {}

  /** A job of `key` entered the service. */
  enter(key: string): void {
    const d = this.demand(key);
    d.current += 1;
    d.samples.push({ at: this.now(), jobs: d.current });
  }

  /** A job of `key` left the service (finished, failed or cancelled). */
  leave(key: string): void {
    const d = this.keys.get(key);
    if (!d) return;
    // The level held until now counts as recent: N jobs that ran together for a long run still say
    // "N at once" right after they finished.
    d.samples.push({ at: this.now(), jobs: d.current });
    d.current = Math.max(0, d.current - 1);
    this.prune(key, d);
  }

  /** Record how long a run of `key` took, in ms (sets the horizon). */
  ran(key: string, ms: number): void {
    this.demand(key).lastRunMs = ms;
  }

  /** Most jobs of `key` in the service at once within the horizon (≥ the current count; 0 when unknown). */
  peak(key: string): number {
    const d = this.keys.get(key);
    if (!d) return 0;
    this.prune(key, d);
    let peak = d.current;
    for (const s of d.samples) peak = Math.max(peak, s.jobs);
    return peak;
  }

  private demand(key: string): KeyDemand {
    let d = this.keys.get(key);
    if (!d) {
      d = { current: 0, samples: [], lastRunMs: 0 };
      this.keys.set(key, d);
    }
    return d;
  }

  /** Drop samples older than the horizon, and keys with nothing left to remember. */
  private prune(key: string, d: KeyDemand): void {
    const horizon = Math.max(MIN_HORIZON_MS, 2 * d.lastRunMs);
    const cutoff = this.now() - horizon;
    let drop = 0;
    while (drop < d.samples.length && d.samples[drop].at < cutoff) drop++;
    if (drop > 0) d.samples.splice(0, drop);
    if (d.current === 0 && d.samples.length === 0) this.keys.delete(key);
  }
}
