import { Hono } from 'hono';
import type { AppEnv } from '../env';
import { notFound } from '../lib/api-error';
import { readEdgeConfig } from '../lib/edge-config';
import { FILES_PATH_PREFIX, verifyFileLink } from '../storage/signed-links';

/** Dependencies of the files route. */
export interface FilesRouteOptions {
  /** Clock in unix milliseconds (tests may pin it). */
  now?: () => number;
}

/**
 * GET /v1/files/<key>?exp=&sig=: serve an R2 object to whoever holds a valid signed link (no Bearer
 * key: the signature is the credential). Tampered or expired links → 403 with the error body; a
 * valid link to a missing object → 404.
 */
export function filesRoutes(options: FilesRouteOptions = {}): Hono<AppEnv> {
  // Looked up per call so a faked clock (vi.setSystemTime) applies.
  const now = options.now ?? (() => Date.now());
  const routes = new Hono<AppEnv>();
  routes.get('/*', async (c) => {
    const config = readEdgeConfig(c.env);
    const url = new URL(c.req.url);
    const encodedKey = url.pathname.slice(url.pathname.indexOf(FILES_PATH_PREFIX) + FILES_PATH_PREFIX.length);
    let key: string;
    try {
      key = encodedKey.split('/').map(decodeURIComponent).join('/');
    } catch {
      throw notFound('No such file.');
    }
    await verifyFileLink({
      key,
      exp: url.searchParams.get('exp') ?? undefined,
      sig: url.searchParams.get('sig') ?? undefined,
      secret: config.linkSigningSecret,
      nowSeconds: Math.floor(now() / 1000),
    });
    const object = await c.env.IMAGES.get(key);
    if (!object) throw notFound('No such file.');
    const headers = new Headers();
    object.writeHttpMetadata(headers);
    headers.set('etag', object.httpEtag);
    headers.set('cache-control', 'private, max-age=300');
    headers.set('x-content-type-options', 'nosniff');
    return new Response(object.body, { headers });
  });
  return routes;
}
