import { DurableObject } from 'cloudflare:workers';
import type { ApiKeyLimits } from '@image-api/shared/api/api-key';
import { IdempotencyLedger, type IdempotencyBegin, type StoredResponse } from '../idempotency/idempotency-ledger';

/** Length of the requests-per-minute window (fixed windows aligned to the minute). */
export const RPM_WINDOW_MS = 60_000;
/** A lease not released within this time (crashed request) stops counting as a running job. */
export const LEASE_TTL_MS = 15 * 60_000;
/** Suggested wait when only the concurrency limit is hit (a running job may finish any moment). */
export const CONCURRENCY_RETRY_AFTER_SECONDS = 1;
/**
 * How long the charge of an admitted async task that waits for its turn (`hold_concurrency: false`)
 * is kept so it can be refunded when the task fails: longer than any task waits in the Queue.
 */
export const WAITING_CHARGE_TTL_MS = 24 * 3_600_000;

/** Pixel-steps in one compute unit: a unit is one megapixel (10^6 pixels) × one step × one image. */
export const PIXEL_STEPS_PER_COMPUTE_UNIT = 1_000_000;

/**
 * The cost of a job in pixel-steps: steps × width × height × images (an integer, so sums and
 * comparisons against the budget are exact; divide by PIXEL_STEPS_PER_COMPUTE_UNIT for compute units).
 * @param steps sampling steps run per image; width/height in pixels; images in the batch.
 * @throws RangeError when any factor is not a positive integer.
 */
export function pixelSteps(cost: { steps: number; width: number; height: number; images: number }): number {
  for (const [name, value] of Object.entries(cost)) {
    if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`pixelSteps: ${name} must be a positive integer, got ${value}`);
  }
  return cost.steps * cost.width * cost.height * cost.images;
}

/** Compute units of `pixelSteps` rounded to 3 decimals (for headers and messages). */
export function computeUnitsOf(pixelStepCount: number): number {
  return Math.round((pixelStepCount / PIXEL_STEPS_PER_COMPUTE_UNIT) * 1000) / 1000;
}

/** What the caller asks for: one generation request of `images` images under `limits`. */
export interface AcquireRequest {
  limits: ApiKeyLimits;
  images: number;
  /**
   * The request's cost in pixel-steps ({@link pixelSteps}); required when `limits` has
   * compute_units_per_minute (a missing cost is refused rather than let through uncounted).
   */
  pixel_steps?: number;
  /** Clock in unix ms; only tests pass it (default: the Durable Object's clock). */
  nowMs?: number;
  /**
   * Id of the lease this admission creates (default a random UUID). Routes pass the task id, so
   * whoever ends the task later (its runner, the Queue consumer, a reader reconciling a stale
   * task) can release the lease and refund its images without having been handed the slot.
   */
  lease_id?: string;
  /**
   * false: admit and charge the request (requests per minute, images per day, compute units) but
   * do not count it as a running job yet, and do not refuse it for the concurrency limit: an async
   * task waiting in the Queue. Its consumer calls {@link RateLimiter.startRun} before running it.
   * Default true (a sync request runs at once).
   */
  hold_concurrency?: boolean;
}

/** The answer of {@link RateLimiter.startRun}. */
export type StartRunDecision =
  | { allowed: true; /** false when the lease was running already (a redelivery) or unknown. */ started: boolean }
  | { allowed: false; code: 'concurrency_limit_exceeded'; message: string; retry_after_seconds: number };

/** The requests-per-minute counters for the X-RateLimit-* headers (absent when no rpm limit). */
export interface RpmState {
  limit: number;
  remaining: number;
  /** Seconds until the current window ends (IETF RateLimit header draft: delta seconds). */
  reset_seconds: number;
}

/** The compute-unit budget of the current minute (absent when the key has no such limit). */
export interface ComputeState {
  /** compute_units_per_minute. */
  limit: number;
  /** Units left in this window after this request, rounded down to 3 decimals. */
  remaining: number;
  /** Seconds until the window ends. */
  reset_seconds: number;
}

/** The answer of {@link RateLimiter.acquire}. */
export type AcquireDecision =
  | { allowed: true; lease_id: string; rpm: RpmState | null; compute: ComputeState | null }
  | {
      allowed: false;
      code:
        | 'rate_limit_exceeded'
        | 'concurrency_limit_exceeded'
        | 'daily_image_limit_exceeded'
        | 'compute_unit_limit_exceeded'
        | 'compute_cost_missing';
      message: string;
      retry_after_seconds: number;
      rpm: RpmState | null;
      compute: ComputeState | null;
    };

/** Persisted state of one key's limiter. `day` is the UTC date "YYYY-MM-DD". */
interface LimiterState {
  window_start_ms: number;
  window_count: number;
  /** Pixel-steps admitted in the current minute window (compute-unit budget). */
  window_pixel_steps?: number;
  day: string;
  day_images: number;
  leases: Record<string, Lease>;
}

/**
 * One admitted request until it ends. `running: false` is an async task's charge while it waits in
 * the Queue: it does not count against the concurrency limit (absent = running, as sync leases are).
 * `concurrency` is the key's limit at admission, which {@link RateLimiter.startRun} applies.
 */
interface Lease {
  expires_ms: number;
  images: number;
  pixel_steps?: number;
  window_start_ms?: number;
  running?: boolean;
  concurrency?: number;
}

/** Leases that count as running jobs. */
function runningLeases(state: LimiterState): number {
  return Object.values(state.leases).filter((lease) => lease.running !== false).length;
}

const STATE_KEY = 'state';

function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/**
 * One Durable Object per API key (named by the key's hash) enforcing its limits: requests per
 * minute (fixed one-minute windows), concurrent jobs (leases released when a request ends, or
 * after LEASE_TTL_MS; an async task is admitted without a running slot and takes one with
 * startRun when its consumer runs it, so the limit bounds running jobs in every API style),
 * images per UTC day (refunded when a job fails), and compute units per
 * minute (steps × megapixels × images, counted in integer pixel-steps in the same one-minute
 * windows as rpm; refunded when a job fails within its window).
 *
 * The same object keeps the key's Idempotency-Key ledger (idempotency/idempotency-ledger.ts): it
 * is the one strongly consistent per-key place the edge has, so "claim this key" cannot race.
 *
 * Exact under concurrency: acquire/release do all their work synchronously on the SQLite-backed
 * synchronous KV API (no await between reading and writing the counters), and a Durable Object
 * runs one such call at a time, so 50 simultaneous requests against a limit of 10 admit exactly 10.
 */
export class RateLimiter extends DurableObject {
  private load(nowMs: number): LimiterState {
    const state = this.ctx.storage.kv.get<LimiterState>(STATE_KEY) ?? {
      window_start_ms: 0,
      window_count: 0,
      day: utcDay(nowMs),
      day_images: 0,
      leases: {},
    };
    const windowStart = Math.floor(nowMs / RPM_WINDOW_MS) * RPM_WINDOW_MS;
    if (state.window_start_ms !== windowStart) {
      state.window_start_ms = windowStart;
      state.window_count = 0;
      state.window_pixel_steps = 0;
    }
    if (state.day !== utcDay(nowMs)) {
      state.day = utcDay(nowMs);
      state.day_images = 0;
    }
    for (const [id, lease] of Object.entries(state.leases)) if (lease.expires_ms <= nowMs) delete state.leases[id];
    return state;
  }

  /** Admit (and count) one request, or say which limit refuses it and for how long. */
  acquire(request: AcquireRequest): AcquireDecision {
    const nowMs = request.nowMs ?? Date.now();
    const state = this.load(nowMs);
    const { rpm, concurrency, images_per_day } = request.limits;
    const resetSeconds = Math.max(1, Math.ceil((state.window_start_ms + RPM_WINDOW_MS - nowMs) / 1000));
    const rpmState = (count: number): RpmState | null =>
      rpm === undefined ? null : { limit: rpm, remaining: Math.max(0, rpm - count), reset_seconds: resetSeconds };
    const cuLimit = request.limits.compute_units_per_minute;
    const budget = cuLimit === undefined ? 0 : Math.round(cuLimit * PIXEL_STEPS_PER_COMPUTE_UNIT);
    const computeState = (used: number): ComputeState | null =>
      cuLimit === undefined
        ? null
        : {
            limit: cuLimit,
            remaining: Math.floor((Math.max(0, budget - used) / PIXEL_STEPS_PER_COMPUTE_UNIT) * 1000) / 1000,
            reset_seconds: resetSeconds,
          };
    const used = state.window_pixel_steps ?? 0;
    const cost = request.pixel_steps;

    if (rpm !== undefined && state.window_count >= rpm) {
      this.ctx.storage.kv.put(STATE_KEY, state);
      return {
        allowed: false,
        code: 'rate_limit_exceeded',
        message: `Rate limit reached: ${rpm} requests per minute for this key.`,
        retry_after_seconds: resetSeconds,
        rpm: rpmState(state.window_count),
        compute: computeState(used),
      };
    }
    const holdConcurrency = request.hold_concurrency ?? true;
    if (holdConcurrency && concurrency !== undefined && runningLeases(state) >= concurrency) {
      this.ctx.storage.kv.put(STATE_KEY, state);
      return {
        allowed: false,
        code: 'concurrency_limit_exceeded',
        message: `Too many jobs running: at most ${concurrency} at a time for this key.`,
        retry_after_seconds: CONCURRENCY_RETRY_AFTER_SECONDS,
        rpm: rpmState(state.window_count),
        compute: computeState(used),
      };
    }
    if (images_per_day !== undefined && state.day_images + request.images > images_per_day) {
      this.ctx.storage.kv.put(STATE_KEY, state);
      const nextDayMs = Date.parse(`${state.day}T00:00:00Z`) + 86_400_000;
      return {
        allowed: false,
        code: 'daily_image_limit_exceeded',
        message: `Daily image limit reached: ${images_per_day} images per UTC day for this key (${state.day_images} used).`,
        retry_after_seconds: Math.max(1, Math.ceil((nextDayMs - nowMs) / 1000)),
        rpm: rpmState(state.window_count),
        compute: computeState(used),
      };
    }
    if (cuLimit !== undefined) {
      if (cost === undefined || !Number.isSafeInteger(cost) || cost <= 0) {
        this.ctx.storage.kv.put(STATE_KEY, state);
        return {
          allowed: false,
          code: 'compute_cost_missing',
          message: 'This key has a compute-unit budget, but the request did not state its cost.',
          retry_after_seconds: resetSeconds,
          rpm: rpmState(state.window_count),
          compute: computeState(used),
        };
      }
      if (used + cost > budget) {
        this.ctx.storage.kv.put(STATE_KEY, state);
        return {
          allowed: false,
          code: 'compute_unit_limit_exceeded',
          message:
            `Compute budget reached: this request needs ${computeUnitsOf(cost)} compute units (steps × megapixels × images) ` +
            `and ${computeState(used)!.remaining} of ${cuLimit} per minute are left for this key.`,
          retry_after_seconds: resetSeconds,
          rpm: rpmState(state.window_count),
          compute: computeState(used),
        };
      }
    }
    state.window_count += 1;
    state.day_images += request.images;
    const charged = cuLimit === undefined ? 0 : (cost ?? 0);
    state.window_pixel_steps = used + charged;
    const leaseId = request.lease_id ?? crypto.randomUUID();
    state.leases[leaseId] = {
      expires_ms: nowMs + (holdConcurrency ? LEASE_TTL_MS : WAITING_CHARGE_TTL_MS),
      images: request.images,
      pixel_steps: charged,
      window_start_ms: state.window_start_ms,
      ...(holdConcurrency ? {} : { running: false }),
      ...(concurrency !== undefined ? { concurrency } : {}),
    };
    this.ctx.storage.kv.put(STATE_KEY, state);
    return { allowed: true, lease_id: leaseId, rpm: rpmState(state.window_count), compute: computeState(state.window_pixel_steps) };
  }

  /**
   * End a lease (the job finished or failed). With `refund_images` the lease's images no longer
   * count against the day (a failed job produced none) and its compute units are given back to
   * the minute window it was charged to, if that window is still the current one. Unknown/expired
   * leases are ignored.
   */
  release(leaseId: string, options: { refund_images: boolean; nowMs?: number }): void {
    const state = this.load(options.nowMs ?? Date.now());
    const lease = state.leases[leaseId];
    if (!lease) return;
    delete state.leases[leaseId];
    if (options.refund_images) {
      state.day_images = Math.max(0, state.day_images - lease.images);
      if (lease.pixel_steps && lease.window_start_ms === state.window_start_ms) {
        state.window_pixel_steps = Math.max(0, (state.window_pixel_steps ?? 0) - lease.pixel_steps);
      }
    }
    this.ctx.storage.kv.put(STATE_KEY, state);
  }

  /**
   * An admitted async task (lease `leaseId`, acquired with `hold_concurrency: false`) wants to run:
   * it becomes a running job unless the key already runs as many as its concurrency limit (the one
   * in force when the task was admitted). A lease that is running already (a redelivered message,
   * a stale run taken over) or unknown (a key without limits, an expired charge) is allowed without
   * counting anew. A running lease expires after LEASE_TTL_MS like a sync one.
   */
  startRun(leaseId: string, options: { nowMs?: number } = {}): StartRunDecision {
    const nowMs = options.nowMs ?? Date.now();
    const state = this.load(nowMs);
    const lease = state.leases[leaseId];
    if (!lease || lease.running !== false) {
      if (lease) lease.expires_ms = nowMs + LEASE_TTL_MS;
      this.ctx.storage.kv.put(STATE_KEY, state);
      return { allowed: true, started: false };
    }
    if (lease.concurrency !== undefined && runningLeases(state) >= lease.concurrency) {
      this.ctx.storage.kv.put(STATE_KEY, state);
      return {
        allowed: false,
        code: 'concurrency_limit_exceeded',
        message: `Too many jobs running: at most ${lease.concurrency} at a time for this key.`,
        retry_after_seconds: CONCURRENCY_RETRY_AFTER_SECONDS,
      };
    }
    lease.running = true;
    lease.expires_ms = nowMs + LEASE_TTL_MS;
    this.ctx.storage.kv.put(STATE_KEY, state);
    return { allowed: true, started: true };
  }

  /**
   * The run of lease `leaseId` stopped without ending its task (re-queued for another attempt): it no
   * longer counts as a running job, and its charge waits (WAITING_CHARGE_TTL_MS) to be kept or refunded.
   */
  stopRun(leaseId: string, options: { nowMs?: number } = {}): void {
    const nowMs = options.nowMs ?? Date.now();
    const state = this.load(nowMs);
    const lease = state.leases[leaseId];
    if (!lease) return;
    lease.running = false;
    lease.expires_ms = nowMs + WAITING_CHARGE_TTL_MS;
    this.ctx.storage.kv.put(STATE_KEY, state);
  }

  /** Idempotency: claim `key` (a hash of the Idempotency-Key) for a request (see IdempotencyLedger.begin). */
  idempotencyBegin(request: { key: string; fingerprint: string; nowMs?: number }): IdempotencyBegin {
    return new IdempotencyLedger(this.ctx.storage.kv).begin(request.key, request.fingerprint, request.nowMs ?? Date.now());
  }

  /** Idempotency: store the first response of the request holding `attempt`; false when it no longer holds the key. */
  idempotencyComplete(request: { key: string; attempt: string; response: StoredResponse }): boolean {
    return new IdempotencyLedger(this.ctx.storage.kv).complete(request.key, request.attempt, request.response);
  }

  /** Idempotency: release `key` without a response so a retry runs again. */
  idempotencyAbandon(request: { key: string; attempt: string }): void {
    new IdempotencyLedger(this.ctx.storage.kv).abandon(request.key, request.attempt);
  }

  /** Idempotency: forget a finished entry whose stored body is missing. */
  idempotencyForget(request: { key: string; bodyKey: string }): boolean {
    return new IdempotencyLedger(this.ctx.storage.kv).forget(request.key, request.bodyKey);
  }
}
