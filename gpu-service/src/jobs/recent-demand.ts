/**
 * How many compatible jobs were in the service at once lately, per batch key: the batcher's evidence that
 * waiting for more jobs will pay (issue 18).
 *
 * A batch leader waits only until its batch holds as many jobs as this peak, and never longer than
 * BATCH_WINDOW_MS or one run of this key (waiting longer than a run cannot pay: the late jobs would
 * run next at that cost anyway):
 * - one client sending one job at a time never has a second job in the service, so the peak is 1 and
 *   its jobs start at once, with no latency tax;
 * - N closed-loop clients (each resubmitting when its result arrives) had N jobs in the service during
 *   the last runs, so the leader of the next round waits the millisecond or two until the other N − 1
 *   arrive, instead of running alone and splitting the round into smaller, slower runs;
 * - when the load drops, the peak follows within RUNS_REMEMBERED + 1 runs, and it is forgotten after the
 *   horizon max(MIN_HORIZON_MS, 2 × the key's last run time), so an occasional job stops waiting.
 */

/** The shortest time a past level is remembered, in ms. */
export const MIN_HORIZON_MS = 1000;
/** Keys remembered before idle ones are swept. */
const MAX_KEYS = 256;
/** How many finished runs' levels are remembered. */
export const RUNS_REMEMBERED = 2;

interface KeyDemand {
  /** Jobs of this key in the service now (queued, forming, running). */
  current: number;
  /** Highest level since the last run ended, and when it was last held (ms). */
  sinceRun: { jobs: number; at: number };
  /** Highest level during each of the last RUNS_REMEMBERED run intervals, newest last. */
  runs: { jobs: number; at: number }[];
  /** Wall time of the key's last run, in ms (0 before the first). */
  lastRunMs: number;
}

export class RecentDemand {
  private readonly keys = new Map<string, KeyDemand>();

  /** @param now a clock in ms (performance.now by default), injectable for tests. */
  constructor(private readonly now: () => number = () => performance.now()) {}

  /** A job of `key` entered the service. */
  enter(key: string): void {
    if (this.keys.size > MAX_KEYS) this.sweep();
    const d = this.demand(key);
    d.current += 1;
    if (d.current >= d.sinceRun.jobs) d.sinceRun = { jobs: d.current, at: this.now() };
  }

  /** A job of `key` left the service (finished, failed or cancelled). */
  leave(key: string): void {
    const d = this.keys.get(key);
    if (!d) return;
    // The level held until now counts as recent: N jobs that ran together through a long run still
    // say "N at once" right after they finished.
    if (d.current >= d.sinceRun.jobs) d.sinceRun = { jobs: d.current, at: this.now() };
    d.current = Math.max(0, d.current - 1);
  }

  /** A run of `key` ended after `ms` milliseconds: its interval's level joins the remembered runs. */
  ran(key: string, ms: number): void {
    const d = this.demand(key);
    d.lastRunMs = ms;
    d.runs.push(d.sinceRun);
    if (d.runs.length > RUNS_REMEMBERED) d.runs.shift();
    d.sinceRun = { jobs: d.current, at: this.now() };
  }

  /** Wall time of the key's last run in ms, or undefined before its first. */
  lastRunMs(key: string): number | undefined {
    const ms = this.keys.get(key)?.lastRunMs;
    return ms ? ms : undefined;
  }

  /**
   * Most jobs of `key` in the service at once during the current and the last RUNS_REMEMBERED run
   * intervals, counting only levels held within the horizon (≥ the current count; 0 for an unknown key).
   */
  peak(key: string): number {
    const d = this.keys.get(key);
    if (!d) return 0;
    const cutoff = this.now() - Math.max(MIN_HORIZON_MS, 2 * d.lastRunMs);
    let peak = d.current;
    for (const level of [...d.runs, d.sinceRun]) if (level.at >= cutoff) peak = Math.max(peak, level.jobs);
    if (d.current === 0 && peak === 0) this.keys.delete(key);
    return peak;
  }

  /** Forget keys with no job in the service and nothing within their horizon (bounded memory). */
  private sweep(): void {
    for (const key of [...this.keys.keys()]) this.peak(key);
  }

  private demand(key: string): KeyDemand {
    let d = this.keys.get(key);
    if (!d) {
      d = { current: 0, sinceRun: { jobs: 0, at: this.now() }, runs: [], lastRunMs: 0 };
      this.keys.set(key, d);
    }
    return d;
  }
}
