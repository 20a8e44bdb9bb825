import type { Context, MiddlewareHandler } from 'hono';
import type { AppEnv } from '../env';
import { ApiError, misconfigured } from '../lib/api-error';
import { toHex } from '../lib/crypto';
import type { StoredResponse } from './idempotency-ledger';
import { requestFingerprint } from './request-fingerprint';

/** The request header (Stripe's and the IETF draft's name). */
export const IDEMPOTENCY_HEADER = 'idempotency-key';
/** Set on a replayed response. */
export const REPLAYED_HEADER = 'idempotent-replayed';
/** Longest accepted Idempotency-Key. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;
/** R2 prefix of stored bodies. `!` cannot start a tenant name, so these never mix with outputs. */
export const IDEMPOTENCY_R2_PREFIX = '!idempotency/';

/**
 * Statuses whose response is NOT kept: the request produced nothing and a retry should run again
 * (408 timeout, 409 conflict, 425, 429 rate limited, every 5xx).
 */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 409 || status === 425 || status === 429;
}

/** Response headers that describe this very response, not the result: never replayed. */
const NOT_REPLAYED = /^(date|set-cookie|content-length|transfer-encoding|connection|retry-after|x-ratelimit-.*)$/;

/** Options of {@link idempotency}. */
export interface IdempotencyOptions {
  /** Clock in unix ms (default Date.now). */
  now?: () => number;
}

/**
 * `Idempotency-Key` support for POST routes that generate (issue 6 part 9). Mount after the auth
 * middleware (it needs `c.get('apiKey')`): `app.use('/v1/images/generations', idempotency())`.
 *
 * Without the header the request passes through untouched. With it (1..255 visible ASCII
 * characters; else 400 `invalid_idempotency_key`), per API key and for 24 hours:
 * - first use: the request runs; its response (status, headers, body) is stored — the body in R2
 *   under `!idempotency/<key hash>/…`, the entry in the key's RateLimiter Durable Object — unless
 *   the status says a retry should run again (5xx, 408, 409, 425, 429: the entry is released);
 *   streamed responses (text/event-stream) are stored when the stream ends;
 * - the same key and the same request again: the stored response is returned as it was, with
 *   `Idempotent-Replayed: true`, without running anything (no GPU call, no rate-limit charge);
 * - while the first request is still running: 409 `idempotency_key_in_use` with Retry-After: 1
 *   (we answer at once rather than hold a connection open; retry the same request);
 * - the same key with a different method, path or body: 422 `idempotency_key_reused`.
 * A request that crashed without releasing its key frees it after 15 minutes.
 * Other methods (GET, …) pass through.
 * @throws ApiError 400/409/413/422 as above; 500 when mounted without auth.
 */
export function idempotency(options: IdempotencyOptions = {}): MiddlewareHandler<AppEnv> {
  const now = options.now ?? (() => Date.now());
  return async function idempotencyKey(c, next) {
    const header = c.req.header(IDEMPOTENCY_HEADER);
    if (c.req.method !== 'POST' || header === undefined) return next();
    if (header.length === 0 || header.length > MAX_IDEMPOTENCY_KEY_LENGTH || !/^[\x21-\x7e]+$/.test(header)) {
      throw new ApiError(
        400,
        'invalid_request_error',
        'invalid_idempotency_key',
        `The Idempotency-Key header must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters.`,
        'Idempotency-Key',
      );
    }
    const apiKey = c.get('apiKey');
    if (!apiKey) throw misconfigured('The idempotency middleware runs before authentication.');
    const stub = c.env.RATE_LIMITER.get(c.env.RATE_LIMITER.idFromName(apiKey.key_hash));
    const key = toHex(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(header)));
    const fingerprint = await requestFingerprint(c.req.raw);

    for (let round = 0; ; round++) {
      const begin = await stub.idempotencyBegin({ key, fingerprint, nowMs: now() });
      if (begin.expired_body_keys.length > 0) background(c, c.env.IMAGES.delete(begin.expired_body_keys));
      if (begin.outcome === 'mismatch') {
        throw new ApiError(
          422,
          'invalid_request_error',
          'idempotency_key_reused',
          'This Idempotency-Key was already used with a different request (method, path or body). Use a new key for a new request.',
          'Idempotency-Key',
        );
      }
      if (begin.outcome === 'in_progress') {
        throw new ApiError(
          409,
          'invalid_request_error',
          'idempotency_key_in_use',
          'A request with this Idempotency-Key is still running. Retry the same request shortly to get its result.',
          'Idempotency-Key',
          { 'retry-after': String(begin.retry_after_seconds) },
        );
      }
      if (begin.outcome === 'replay') {
        const object = await c.env.IMAGES.get(begin.response.body_key);
        if (object) return replay(begin.response, object.body);
        // The stored body is gone (deleted by hand or a lifecycle rule): run the request again.
        await stub.idempotencyForget({ key, bodyKey: begin.response.body_key });
        if (round === 0) continue;
        throw new ApiError(500, 'server_error', 'idempotency_store_failed', 'The stored response of this Idempotency-Key is missing.');
      }

      const attempt = begin.attempt;
      let released = false;
      const abandon = async () => {
        if (released) return;
        released = true;
        await stub.idempotencyAbandon({ key, attempt }).catch((error: unknown) => console.error('releasing an Idempotency-Key failed', error));
      };
      try {
        await next();
      } catch (error) {
        await abandon();
        throw error;
      }
      const response = c.res;
      if (isRetryableStatus(response.status)) {
        await abandon();
        return;
      }
      const bodyKey = `${IDEMPOTENCY_R2_PREFIX}${apiKey.key_hash}/${key}/${attempt}`;
      const stored: StoredResponse = { status: response.status, headers: replayableHeaders(response.headers), body_key: bodyKey };
      const store = async (bytes: Uint8Array): Promise<void> => {
        try {
          await c.env.IMAGES.put(bodyKey, bytes, { customMetadata: { key_hash: apiKey.key_hash, status: String(response.status) } });
          const kept = await stub.idempotencyComplete({ key, attempt, response: stored });
          released = true;
          if (!kept) await c.env.IMAGES.delete(bodyKey);
        } catch (error) {
          console.error('storing the response of an Idempotency-Key failed; the key is released', error);
          await abandon();
        }
      };
      if ((response.headers.get('content-type') ?? '').includes('text/event-stream') && response.body) {
        // A stream is stored once it has ended (a broken stream releases the key); the client
        // reads its own branch meanwhile.
        const [toClient, toStore] = response.body.tee();
        c.res = new Response(toClient, response);
        background(
          c,
          new Response(toStore)
            .arrayBuffer()
            .then((buffer) => store(new Uint8Array(buffer)), abandon),
        );
      } else {
        // Stored before the client sees it, so a retry that follows at once is a replay.
        const bytes = new Uint8Array(await response.arrayBuffer());
        await store(bytes);
        c.res = new Response(bytes, response);
      }
      return;
    }
  };
}

/** The headers of a response worth replaying. */
function replayableHeaders(headers: Headers): Record<string, string> {
  const kept: Record<string, string> = {};
  headers.forEach((value, name) => {
    if (!NOT_REPLAYED.test(name.toLowerCase())) kept[name.toLowerCase()] = value;
  });
  return kept;
}

/** The stored response again, marked as a replay. */
function replay(stored: StoredResponse, body: ReadableStream): Response {
  const headers = new Headers(stored.headers);
  headers.set(REPLAYED_HEADER, 'true');
  return new Response(stored.status === 204 ? null : body, { status: stored.status, headers });
}

/** Run `promise` after the response (waitUntil), or just let it run when there is no execution context (tests). */
function background(c: Context<AppEnv>, promise: Promise<unknown>): void {
  const logged = promise.catch((error: unknown) => console.error('idempotency background work failed', error));
  try {
    c.executionCtx.waitUntil(logged);
  } catch {
    // No ExecutionContext (app.request in tests): the promise still runs.
  }
}
