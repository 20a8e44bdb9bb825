import { Hono } from 'hono';
import { PAGE_HTML } from './page-html';
import { PLAYGROUND_ASSETS } from './playground-assets';

export { PAGE_HTML } from './page-html';
export { PLAYGROUND_ASSETS, type PlaygroundAsset } from './playground-assets';
export { PLAYGROUND_CONFIG, type PlaygroundConfig } from './playground-config';

/**
 * Content-Security-Policy of every playground response: scripts, styles and API calls from this origin
 * only (nothing loads from outside); images also from data: (base64 results) and blob: (uploads, masks).
 */
export const PLAYGROUND_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

function securityHeaders(contentType: string): Record<string, string> {
  return {
    'content-type': contentType,
    // The page and its modules change with each deploy; revalidate rather than serve a stale mix.
    'cache-control': 'no-cache',
    'content-security-policy': PLAYGROUND_CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  };
}

/**
 * The web playground (issue 7, README "Public API"): GET / and GET /playground serve the page, GET
 * /playground/<file> its CSS and JavaScript modules (PLAYGROUND_ASSETS); an unknown file is a 404 from the
 * surrounding app's not-found handler. No auth: the page asks for an API key and calls the public API
 * (same origin) with it. Mount with `app.route('/', playground)`.
 */
export const playground = new Hono();

const servePage = () => new Response(PAGE_HTML, { status: 200, headers: securityHeaders('text/html; charset=utf-8') });

playground.get('/', servePage);
playground.get('/playground', servePage);
playground.get('/playground/', servePage);
playground.get('/playground/:file', (c) => {
  const name = c.req.param('file');
  const asset = Object.prototype.hasOwnProperty.call(PLAYGROUND_ASSETS, name) ? PLAYGROUND_ASSETS[name] : undefined;
  if (asset === undefined) return c.notFound();
  return new Response(asset.body, { status: 200, headers: securityHeaders(asset.contentType) });
});
