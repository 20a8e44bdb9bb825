import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../env';
import { IDEMPOTENCY_MAX_BODY_BYTES, readCapped } from '../idempotency/request-fingerprint';
import { LINK_TTL_FIELD, readEdgeConfig, resolveLinkTtl } from '../lib/edge-config';

/**
 * The `link_ttl_seconds` of a request: the query parameter, else the JSON body's top-level field
 * (or, for the async style, `extra.link_ttl_seconds`), else the multipart/urlencoded form field.
 * Reads a clone of the body, so the route can still read it. Undefined when absent or unreadable
 * (the route reports a broken body itself).
 */
async function requestedLinkTtl(request: Request): Promise<unknown> {
  const fromQuery = new URL(request.url).searchParams.get(LINK_TTL_FIELD);
  if (fromQuery !== null) return fromQuery;
  if (request.method !== 'POST' || !request.body) return undefined;
  const contentType = request.headers.get('content-type') ?? '';
  const mediaType = contentType.split(';')[0].trim().toLowerCase();
  try {
    if (mediaType === 'application/json') {
      const bytes = await readCapped(request.clone().body, IDEMPOTENCY_MAX_BODY_BYTES);
      const body: unknown = JSON.parse(new TextDecoder().decode(bytes));
      if (body === null || typeof body !== 'object') return undefined;
      const record = body as Record<string, unknown>;
      if (record[LINK_TTL_FIELD] !== undefined) return record[LINK_TTL_FIELD];
      const extra = record.extra;
      return extra !== null && typeof extra === 'object' ? (extra as Record<string, unknown>)[LINK_TTL_FIELD] : undefined;
    }
    if (mediaType === 'multipart/form-data' || mediaType === 'application/x-www-form-urlencoded') {
      const value = (await request.clone().formData()).get(LINK_TTL_FIELD);
      return typeof value === 'string' ? value : undefined;
    }
  } catch {
    return undefined;
  }
  return undefined;
}

/**
 * Per-request lifetime of the signed links a response carries (issue 6 part 7): a request may ask
 * for `link_ttl_seconds` (query parameter, JSON body field — top level, or `extra.` for the /v3
 * async style — or form field) between MIN_LINK_TTL_SECONDS and LINK_TTL_MAX_SECONDS (default 7
 * days); without it links live LINK_TTL_SECONDS (1 hour).
 *
 * How it reaches the routes: for this request only, `c.env` is replaced by a copy whose
 * LINK_TTL_SECONDS is the requested value, so every route that signs with
 * `readEdgeConfig(c.env).linkTtlSeconds` honours it with no change of its own. Mount it before
 * the URL-returning routes: `app.use('/v1/images/generations', linkTtl())`, and on the GETs that
 * mint links (GET /v1/tasks/:id, /v3/async/task-result) for `?link_ttl_seconds=`.
 * @throws ApiError 400 `invalid_parameter`, param "link_ttl_seconds", for a value out of range or
 *   not an integer; 500 `server_misconfigured` from readEdgeConfig.
 */
export function linkTtl(): MiddlewareHandler<AppEnv> {
  return async function perRequestLinkTtl(c, next) {
    const requested = await requestedLinkTtl(c.req.raw);
    if (requested === undefined || requested === null || requested === '') return next();
    const ttlSeconds = resolveLinkTtl(requested, readEdgeConfig(c.env));
    c.env = { ...c.env, LINK_TTL_SECONDS: String(ttlSeconds) };
    await next();
  };
}
