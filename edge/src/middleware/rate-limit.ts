import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { ApiError, invalidParameter } from '../lib/api-error';
import {
  computeUnitsOf,
  pixelSteps,
  PIXEL_STEPS_PER_COMPUTE_UNIT,
  type AcquireDecision,
  type ComputeState,
  type RateLimiter,
  type RpmState,
  type StartRunDecision,
} from '../rate-limit/rate-limiter';

/**
 * What one generation request will cost: sampling steps per image and the output size in pixels
 * (the image count is `images` of {@link acquireGenerationSlot}). For img2img with a scaled
 * strength schedule, pass the steps actually run.
 */
export interface GenerationCost {
  steps: number;
  width: number;
  height: number;
}

/** Options of {@link acquireGenerationSlot}. */
export interface SlotOptions {
  /** The task id: the lease is named by it, so whoever ends the task can settle it (see settleTaskLease). */
  taskId?: string;
  /**
   * false for an async submit: charge the request now, but take no running slot (the Queue consumer
   * takes one with startTaskRun) and never refuse it for the concurrency limit. Default true.
   */
  holdConcurrency?: boolean;
}

/** A granted generation slot; call release once the request ends. */
export interface GenerationSlot {
  /** `succeeded: false` refunds the images to the daily budget. */
  release(succeeded: boolean): Promise<void>;
}

function setRpmHeaders(headers: Record<string, string>, rpm: RpmState | null): void {
  if (!rpm) return;
  headers['x-ratelimit-limit'] = String(rpm.limit);
  headers['x-ratelimit-remaining'] = String(rpm.remaining);
  headers['x-ratelimit-reset'] = String(rpm.reset_seconds);
}

/** The compute-unit budget as X-RateLimit-{Limit,Remaining,Reset}-Compute-Units (OpenAI names its token budget so). */
function setComputeHeaders(headers: Record<string, string>, compute: ComputeState | null): void {
  if (!compute) return;
  headers['x-ratelimit-limit-compute-units'] = String(compute.limit);
  headers['x-ratelimit-remaining-compute-units'] = String(compute.remaining);
  headers['x-ratelimit-reset-compute-units'] = String(compute.reset_seconds);
}

/**
 * Ask the key's RateLimiter Durable Object (named by the key hash) for a slot for a generation
 * of `images` images costing `cost`. Keys without limits skip the call. Sets X-RateLimit-Limit /
 * -Remaining / -Reset (requests per minute; Reset in seconds) and, for keys with a compute-unit
 * budget, X-RateLimit-Limit/-Remaining/-Reset-Compute-Units on the response. A 429 for the compute
 * budget reports that budget in the plain X-RateLimit-* headers too (the limit that refused).
 * Call it once the job's steps and size are known and before any GPU work. With `taskId` the lease
 * is the task's (settleTaskLease / startTaskRun find it by the task row alone).
 * @param cost steps and size of the job; required for keys with compute_units_per_minute (a
 *   route that cannot say what it costs must not run uncounted: 500 `compute_cost_missing`).
 * @throws ApiError 429 (`rate_limit_exceeded`, `concurrency_limit_exceeded`,
 *   `daily_image_limit_exceeded` or `compute_unit_limit_exceeded`, type rate_limit_error) with
 *   Retry-After; 400 `compute_units_exceed_limit` when this one request costs more than the whole
 *   per-minute budget (waiting would not help).
 */
export async function acquireGenerationSlot(
  c: Context<AppEnv>,
  images: number,
  cost?: GenerationCost,
  options: SlotOptions = {},
): Promise<GenerationSlot | null> {
  const apiKey = c.get('apiKey');
  const limits = apiKey.limits;
  if (
    limits.rpm === undefined &&
    limits.concurrency === undefined &&
    limits.images_per_day === undefined &&
    limits.compute_units_per_minute === undefined
  ) {
    return null;
  }
  const requestPixelSteps = cost === undefined ? undefined : pixelSteps({ ...cost, images });
  if (
    limits.compute_units_per_minute !== undefined &&
    requestPixelSteps !== undefined &&
    requestPixelSteps > Math.round(limits.compute_units_per_minute * PIXEL_STEPS_PER_COMPUTE_UNIT)
  ) {
    throw invalidParameter(
      null,
      `This request costs ${computeUnitsOf(requestPixelSteps)} compute units (steps × megapixels × images), more than this key's ` +
        `whole budget of ${limits.compute_units_per_minute} per minute; use fewer steps, a smaller size or fewer images.`,
      'compute_units_exceed_limit',
    );
  }
  const stub = c.env.RATE_LIMITER.get(c.env.RATE_LIMITER.idFromName(apiKey.key_hash));
  const admit = async (): Promise<AcquireDecision> =>
    stub.acquire({
      limits,
      images,
      pixel_steps: requestPixelSteps,
      ...(options.taskId !== undefined ? { lease_id: options.taskId } : {}),
      ...(options.holdConcurrency === false ? { hold_concurrency: false } : {}),
    });
  const timing = c.get('timing');
  const decision = timing ? await timing.measure('ratelimit', admit) : await admit();
  const headers: Record<string, string> = {};
  setRpmHeaders(headers, decision.rpm);
  setComputeHeaders(headers, decision.compute);
  if (!decision.allowed) {
    if (decision.code === 'compute_cost_missing') {
      console.error('acquireGenerationSlot called without a cost for a key with a compute-unit budget');
      throw new ApiError(500, 'server_error', decision.code, decision.message);
    }
    if (decision.code === 'compute_unit_limit_exceeded' && decision.compute) {
      headers['x-ratelimit-limit'] = String(decision.compute.limit);
      headers['x-ratelimit-remaining'] = String(decision.compute.remaining);
      headers['x-ratelimit-reset'] = String(decision.compute.reset_seconds);
    }
    headers['retry-after'] = String(decision.retry_after_seconds);
    throw new ApiError(429, 'rate_limit_error', decision.code, decision.message, null, headers);
  }
  for (const [name, value] of Object.entries(headers)) c.header(name, value);
  const leaseId = decision.lease_id;
  return {
    release: async (succeeded) => {
      try {
        await stub.release(leaseId, { refund_images: !succeeded });
      } catch (error) {
        // The lease expires by itself (LEASE_TTL_MS); never fail the response for this.
        console.error('releasing a rate-limit lease failed', error);
      }
    },
  };
}

/** The RateLimiter of the key a task row belongs to (named by its key hash). */
function limiterOf(env: AppEnv['Bindings'], keyHash: string): DurableObjectStub<RateLimiter> {
  return env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(keyHash));
}

/**
 * A task has ended: end its rate-limit lease (named by the task id, see SlotOptions.taskId), refunding
 * its images and compute units unless it SUCCEEDed. Harmless when the lease was released already or
 * never existed (a key without limits), so every place that ends a task may call it. Never throws (a
 * lease left over expires on its own).
 */
export async function settleTaskLease(env: AppEnv['Bindings'], task: { id: string; key_hash: string; status: string }): Promise<void> {
  try {
    await limiterOf(env, task.key_hash).release(task.id, { refund_images: task.status !== 'SUCCEED' });
  } catch (error) {
    console.error(`task ${task.id}: settling its rate-limit lease failed`, error);
  }
}

/**
 * An async task's consumer wants to run it: take a running slot under the key's concurrency limit
 * (RateLimiter.startRun). @returns the decision; `started` says this call took the slot (give it back
 * with stopTaskRun if the run does not happen).
 */
export async function startTaskRun(env: AppEnv['Bindings'], task: { id: string; key_hash: string }): Promise<StartRunDecision> {
  return limiterOf(env, task.key_hash).startRun(task.id);
}

/** The run of an async task stopped without ending it (re-queued): its running slot is free again, its charge kept. Never throws. */
export async function stopTaskRun(env: AppEnv['Bindings'], task: { id: string; key_hash: string }): Promise<void> {
  try {
    await limiterOf(env, task.key_hash).stopRun(task.id);
  } catch (error) {
    console.error(`task ${task.id}: freeing its running slot failed`, error);
  }
}
