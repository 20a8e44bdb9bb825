import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { ApiError } from '../lib/api-error';
import type { RpmState } from '../rate-limit/rate-limiter';

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

/**
 * Ask the key's RateLimiter Durable Object (named by the key hash) for a slot for a generation
 * of `images` images. Keys without limits skip the call. Sets X-RateLimit-Limit / -Remaining /
 * -Reset (requests per minute; Reset in seconds) on the response.
 * @throws ApiError 429 (`rate_limit_exceeded`, `concurrency_limit_exceeded` or
 *   `daily_image_limit_exceeded`, type rate_limit_error) with Retry-After.
 */
export async function acquireGenerationSlot(c: Context<AppEnv>, images: number): Promise<GenerationSlot | null> {
  const apiKey = c.get('apiKey');
  const limits = apiKey.limits;
  if (limits.rpm === undefined && limits.concurrency === undefined && limits.images_per_day === undefined) return null;
  const stub = c.env.RATE_LIMITER.get(c.env.RATE_LIMITER.idFromName(apiKey.key_hash));
  const decision = await stub.acquire({ limits, images });
  const headers: Record<string, string> = {};
  setRpmHeaders(headers, decision.rpm);
  if (!decision.allowed) {
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
