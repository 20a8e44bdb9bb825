import type { MiddlewareHandler } from 'hono';
import { ApiKeyRecordSchema, apiKeyHash } from '@image-api/shared/api/api-key';
import type { AppEnv } from '../env';
import { invalidApiKey, missingApiKey } from '../lib/api-error';
import { constantTimeEqual } from '../lib/crypto';

/** Options of {@link auth}. */
export interface AuthOptions {
  /** Name of the KV binding holding key records (default "API_KEYS"). */
  binding?: 'API_KEYS';
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/**
 * Bearer-key authentication. The presented key is hashed with SHA-256; the hex digest is the KV
 * key of its record (keys themselves are never stored). The record's `key_hash` is compared with
 * the digest in constant time, and revoked keys are refused. On success the record is available
 * as `c.get('apiKey')`.
 * @throws ApiError 401 `missing_api_key` (no/ill-formed Authorization header) or `invalid_api_key`
 *   (unknown, malformed record, or revoked).
 */
export function auth(options: AuthOptions = {}): MiddlewareHandler<AppEnv> {
  const binding = options.binding ?? 'API_KEYS';
  return async function authenticate(c, next) {
    const header = c.req.header('authorization');
    const match = header ? BEARER.exec(header) : null;
    if (!match) throw missingApiKey();
    const lookup = async () => {
      const digest = await apiKeyHash(match[1]);
      return { digest, stored: await c.env[binding].get(digest, 'json') };
    };
    const timing = c.get('timing');
    const { digest, stored } = timing ? await timing.measure('auth', lookup) : await lookup();
    const parsed = ApiKeyRecordSchema.safeParse(stored);
    if (!parsed.success || !constantTimeEqual(parsed.data.key_hash, digest)) throw invalidApiKey();
    if (parsed.data.revoked) throw invalidApiKey('This API key has been revoked.');
    c.set('apiKey', parsed.data);
    await next();
  };
}
