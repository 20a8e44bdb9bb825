import { ApiError } from '../lib/api-error';

/**
 * Delivery attempts of one async task before it ends FAILED. wrangler.toml's consumer `max_retries`
 * is set above this − 1, so the consumer (not Queues) always decides the last attempt.
 */
export const ASYNC_TASK_MAX_ATTEMPTS = 6;

/** First retry delay in seconds; doubled per attempt (10, 20, 40, 80, 160 s ≈ 5 min in all). */
export const ASYNC_RETRY_BASE_DELAY_SECONDS = 10;
/** Longest retry delay, in seconds. */
export const ASYNC_RETRY_MAX_DELAY_SECONDS = 300;

/**
 * Seconds to wait before delivery attempt `attempt + 1`, after attempt `attempt` (1-based) failed:
 * exponential backoff base × 2^(attempt − 1), capped; a Retry-After the GPU service sent (503
 * queue_full) is honoured when longer.
 */
export function retryDelaySeconds(attempt: number, retryAfterSeconds?: number): number {
  const backoff = Math.min(ASYNC_RETRY_BASE_DELAY_SECONDS * 2 ** Math.max(0, attempt - 1), ASYNC_RETRY_MAX_DELAY_SECONDS);
  if (retryAfterSeconds !== undefined && Number.isFinite(retryAfterSeconds) && retryAfterSeconds > backoff) {
    return Math.min(Math.ceil(retryAfterSeconds), ASYNC_RETRY_MAX_DELAY_SECONDS);
  }
  return backoff;
}

/** How the consumer treats a failed attempt. */
export interface FailureClass {
  /** True: try again later (backend unreachable, busy, storage hiccup); false: fail the task now. */
  transient: boolean;
  /** The sentence stored as the task's `reason`. */
  reason: string;
  /** Retry-After of a 503, in seconds. */
  retryAfterSeconds?: number;
}

/**
 * Classify an attempt's error. Transient: the GPU service unreachable or failing (502), busy (503,
 * e.g. queue_full, with its Retry-After), a storage failure (500 storage_failed), a rate limit (429),
 * and any unexpected error (a bug or a crash is worth another attempt; the attempt cap ends it).
 * Permanent: every other 4xx — the GPU service refused the job itself (400 naming a field, 404
 * model_not_found, 409, 413, 415, 422), which another attempt cannot change.
 */
export function classifyFailure(error: unknown): FailureClass {
  if (error instanceof ApiError) {
    const status = error.status as number;
    const reason = error.param ? `${error.message} (${error.param})` : error.message;
    if (status >= 400 && status < 500 && status !== 408 && status !== 429) return { transient: false, reason };
    const retryAfter = Number(error.headers['retry-after']);
    return { transient: true, reason, retryAfterSeconds: Number.isFinite(retryAfter) ? retryAfter : undefined };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { transient: true, reason: `Internal error: ${message}` };
}
