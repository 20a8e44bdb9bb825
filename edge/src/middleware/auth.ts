import type { MiddlewareHandler } from 'hono';
import { ApiKeyRecordSchema, apiKeyHash, type ApiKeyRecord } from '@image-api/shared/api/api-key';
import type { AppEnv } from '../env';
import { invalidApiKey, missingApiKey } from '../lib/api-error';
import { constantTimeEqual } from '../lib/crypto';
import { apiKeyCacheMs, ApiKeyRecordCache } from './api-key-cache';

/** Options of {@link auth}. */
export interface AuthOptions {
  /** Name of the KV binding holding key records (default "API_KEYS"). */
  binding?: 'API_KEYS';
  /** The isolate's record cache (default: one per middleware instance); API_KEY_CACHE_SECONDS sets its TTL. */
  cache?: ApiKeyRecordCache;
  /** Clock in unix milliseconds (default Date.now). */
  now?: () => number;
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/**
 * Bearer-key authentication. The presented key is hashed with SHA-256; the hex digest is the KV
 * key of its record (keys themselves are never stored). The record's `key_hash` is compared with
 * the digest in constant time, and revoked keys are refused. On success the record is available
 * as `c.get('apiKey')`. A record that exists is reused for API_KEY_CACHE_SECONDS (default 10 s, 0 = off) in
 * this isolate (api-key-cache.ts): a revocation or limit change takes effect within that, on top of KV's own
 * propagation delay.
 * @throws ApiError 401 `missing_api_key` (no/ill-formed Authorization header) or `invalid_api_key`
 *   (unknown, malformed record, or revoked); 500 `server_misconfigured` for a bad API_KEY_CACHE_SECONDS.
 */
export function auth(options: AuthOptions = {}): MiddlewareHandler<AppEnv> {
  const binding = options.binding ?? 'API_KEYS';
  const cache = options.cache ?? new ApiKeyRecordCache();
  const now = options.now ?? (() => Date.now());
  return async function authenticate(c, next) {
    const header = c.req.header('authorization');
    const match = header ? BEARER.exec(header) : null;
    if (!match) throw missingApiKey();
    const ttlMs = apiKeyCacheMs(c.env);
    const lookup = async (): Promise<{ digest: string; record: ApiKeyRecord | null }> => {
      const digest = await apiKeyHash(match[1]);
      const cached = ttlMs > 0 ? cache.get(digest, now()) : undefined;
      if (cached) return { digest, record: cached };
      const parsed = ApiKeyRecordSchema.safeParse(await c.env[binding].get(digest, 'json'));
      if (!parsed.success) return { digest, record: null };
      if (ttlMs > 0) cache.set(digest, parsed.data, now() + ttlMs);
      return { digest, record: parsed.data };
    };
    const timing = c.get('timing');
    const { digest, record } = timing ? await timing.measure('auth', lookup) : await lookup();
    // Checked on every request, cached or not: a record stored under another key's digest never matches.
    if (!record || !constantTimeEqual(record.key_hash, digest)) throw invalidApiKey();
    if (record.revoked) throw invalidApiKey('This API key has been revoked.');
    c.set('apiKey', record);
    await next();
  };
}
