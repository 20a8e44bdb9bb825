import { Hono } from 'hono';
import type { AppEnv } from '../env';
import type { ModelCatalog } from '../gpu/model-catalog';
import { DOCS_CSS, DOCS_JS, renderDocsHtml } from '../openapi/docs-page';
import { buildOpenApiDocument } from '../openapi/openapi-document';

/** Dependencies shared by the route factories (see app.ts). */
export interface RouteOptions {
  catalog: ModelCatalog;
  /** Clock in unix milliseconds (tests may pin it). */
  now?: () => number;
}

/** CSP of the reference page: its own script and style only, nothing from outside. */
export const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

function pageHeaders(contentType: string): Record<string, string> {
  return {
    'content-type': contentType,
    'cache-control': 'no-cache',
    'content-security-policy': DOCS_CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  };
}

/**
 * GET /openapi.json (the OpenAPI 3.1 document, built once per app instance from the shared zod
 * schemas; `servers` is relative so it works behind any host) and GET /docs (the reference page
 * rendered from it, with /docs/docs.js and /docs/docs.css). No auth; CORS open for the document so
 * external tools can load it.
 */
export function docsRoutes(_options: RouteOptions): Hono<AppEnv> {
  const routes = new Hono<AppEnv>();
  let document: Record<string, unknown> | null = null;
  let page: string | null = null;
  const openApi = () => (document ??= buildOpenApiDocument('/'));

  routes.get('/openapi.json', (c) => {
    c.header('access-control-allow-origin', '*');
    c.header('cache-control', 'no-cache');
    return c.json(openApi());
  });
  routes.get('/docs', () => new Response((page ??= renderDocsHtml(openApi())), { headers: pageHeaders('text/html; charset=utf-8') }));
  routes.get('/docs/', () => new Response((page ??= renderDocsHtml(openApi())), { headers: pageHeaders('text/html; charset=utf-8') }));
  routes.get('/docs/:file', (c) => {
    const file = c.req.param('file');
    if (file === 'docs.js') return new Response(DOCS_JS, { headers: pageHeaders('text/javascript; charset=utf-8') });
    if (file === 'docs.css') return new Response(DOCS_CSS, { headers: pageHeaders('text/css; charset=utf-8') });
    return c.notFound();
  });
  return routes;
}
