/**
 * Per-request phase timing of the edge, sent as a standard `Server-Timing` header
 * (https://www.w3.org/TR/server-timing/: `name;dur=<ms>[;desc="…"]`, comma-separated), so a client or
 * `npm run bench -- --edge` can see where the edge's time goes.
 *
 * What it may say: only the fixed phase names below and their durations (milliseconds, 0.1 ms
 * resolution), plus how many calls a phase summed — never a value from the request, a key, a task id or
 * a backend address. The header is added only to responses of authenticated requests (middleware
 * below), so a caller without a valid key learns nothing about how long the key lookup took. It costs one
 * clock read per phase boundary. On by default; the Worker var `SERVER_TIMING = "false"` turns it off.
 *
 * Clock: `performance.now()`. In a deployed Worker the clock only advances across I/O (Spectre
 * mitigation), so CPU-only work shows as 0 ms; every phase here is I/O-bound (KV, Durable Object, D1,
 * GPU fetch, R2), which is what the header is for.
 */
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../env';

/**
 * The phases:
 * - `auth`: API key hash + KV lookup;
 * - `ratelimit`: the key's RateLimiter Durable Object admission (absent for keys without limits);
 * - `db`: task-row writes and reads the response waited for (D1), summed;
 * - `gpu`: POST /v1/jobs to the GPU service until its `done` event (its own queueing and work included);
 * - `r2`: storing the output images;
 * - `total`: from the request entering the Worker to its response being handed back (every phase above,
 *   the edge's own work in between — routing, validation, model lookup, building the body — included).
 */
export const SERVER_TIMING_PHASES = ['auth', 'ratelimit', 'db', 'gpu', 'r2', 'total'] as const;
export type ServerTimingPhase = (typeof SERVER_TIMING_PHASES)[number];

/**
 * The durations of one request's phases. A phase measured more than once is summed (e.g. several
 * task-row writes); calls may overlap only when the request awaited both at once, which the edge does not do.
 */
export class ServerTiming {
  private readonly sums = new Map<ServerTimingPhase, { ms: number; calls: number }>();
  private readonly startedAt: number;

  /** @param clock milliseconds, monotonic (default performance.now). */
  constructor(private readonly clock: () => number = () => performance.now()) {
    this.startedAt = clock();
  }

  /** Add `ms` milliseconds (≥ 0) to `phase`. */
  add(phase: ServerTimingPhase, ms: number): void {
    const entry = this.sums.get(phase) ?? { ms: 0, calls: 0 };
    entry.ms += Math.max(0, ms);
    entry.calls += 1;
    this.sums.set(phase, entry);
  }

  /** Await `work`, adding its duration to `phase` whether it resolves or rejects. */
  async measure<T>(phase: ServerTimingPhase, work: () => Promise<T>): Promise<T> {
    const start = this.clock();
    try {
      return await work();
    } finally {
      this.add(phase, this.clock() - start);
    }
  }

  /** Milliseconds summed for `phase` so far (0 when never measured). */
  durationOf(phase: ServerTimingPhase): number {
    return this.sums.get(phase)?.ms ?? 0;
  }

  /**
   * The header value: each measured phase in SERVER_TIMING_PHASES order, then `total` (since construction).
   * A phase summed over several calls says how many in `desc`.
   */
  header(): string {
    const parts: string[] = [];
    for (const phase of SERVER_TIMING_PHASES) {
      if (phase === 'total') continue;
      const entry = this.sums.get(phase);
      if (!entry) continue;
      parts.push(`${phase};dur=${entry.ms.toFixed(1)}${entry.calls > 1 ? `;desc="${entry.calls} calls"` : ''}`);
    }
    parts.push(`total;dur=${(this.clock() - this.startedAt).toFixed(1)}`);
    return parts.join(', ');
  }
}

/** Whether the Worker var SERVER_TIMING leaves the header on (anything but "false"/"0"/"off"). */
export function serverTimingEnabled(vars: { SERVER_TIMING?: string }): boolean {
  const value = (vars.SERVER_TIMING ?? '').trim().toLowerCase();
  return !['false', '0', 'off', 'no'].includes(value);
}

/**
 * Middleware (first in the app): give the request a {@link ServerTiming} (`c.get('timing')`) and, when the
 * request was authenticated (`apiKey` set) and SERVER_TIMING is not "false", add the `Server-Timing`
 * header to its response, error responses included.
 */
export function serverTiming(): MiddlewareHandler<AppEnv> {
  return async function timeRequest(c, next) {
    const timing = new ServerTiming();
    c.set('timing', timing);
    await next();
    if (!c.get('apiKey') || !serverTimingEnabled(c.env)) return;
    try {
      c.res.headers.set('server-timing', timing.header());
    } catch {
      // An immutable response (passed through from a fetch): leave it as it is.
    }
  };
}
