import { Hono } from 'hono';
import type { AppEnv } from './env';
import { ModelCatalog } from './gpu/model-catalog';
import { auth } from './middleware/auth';
import { errorHandler, notFoundHandler } from './middleware/error-handler';
import { filesRoutes } from './routes/files';
import { modelsRoutes } from './routes/models';
import { openAiImagesRoutes } from './routes/openai-images';
import { openAiEditRoutes } from './routes/openai-edits';
import { img2imgRoutes } from './routes/img2img';
import { tasksRoutes } from './routes/tasks';
import { asyncTaskRoutes } from './routes/async-tasks';
import { docsRoutes } from './routes/docs';
import { idempotency } from './idempotency/idempotency-middleware';
import { linkTtl } from './middleware/link-ttl';
import { playground } from './playground';
import { losslessSeeds } from './inputs/lossless-json';
import { bodySizeLimit } from './inputs/body-size-limit';
import { serverTiming } from './lib/server-timing';

/** Options of {@link buildApp}. */
export interface BuildAppOptions {
  /** Clock in unix milliseconds for link signing/expiry and R2 dates (default Date.now). */
  now?: () => number;
  /** Model-list cache; one per app instance by default. */
  catalog?: ModelCatalog;
}

/**
 * The edge Hono app. Routes:
 * - GET  /healthz                         (no auth)
 * - GET  /v1/files/*                      (signed links, no Bearer)
 * - POST /v1/images/generations, /api/images/generations   (Bearer)
 * - GET  /v1/models                       (Bearer)
 * - POST /v1/images/edits, /v1/images/variations, /v1/img2img, /v3/async/*, GET /v3/model,
 *   GET|DELETE /v1/tasks/:id[/events]     (Bearer)
 * - GET  /, /playground, /playground/*    (the web playground; no auth)
 * - GET  /openapi.json, /docs             (no auth)
 * Every error is rendered by middleware/error-handler.ts in the shared error body.
 */
export function buildApp(options: BuildAppOptions = {}): Hono<AppEnv> {
  const catalog = options.catalog ?? new ModelCatalog();
  const app = new Hono<AppEnv>();
  app.onError(errorHandler());
  app.notFound(notFoundHandler());
  // First, so `total` covers everything; the header goes only on authenticated responses (lib/server-timing.ts).
  app.use('*', serverTiming());
  // Seeds above 2^53 − 1 must reach the schemas exactly (JSON.parse would round them).
  app.use('*', losslessSeeds());

  // STACK_INSTANCE_ID is set by `npm start` only, so its readiness probe can tell its own Worker from another
  // stack's on the same port; deployments leave it unset.
  app.get('/healthz', (c) => {
    const instance = (c.env as { STACK_INSTANCE_ID?: string }).STACK_INSTANCE_ID;
    return c.json({ ok: true, ...(instance ? { instance_id: instance } : {}) });
  });
  app.route('/v1/files', filesRoutes({ now: options.now }));
  app.route('/', playground);
  app.route('/', docsRoutes({ catalog, now: options.now }));

  const requireKey = auth();
  app.use('/v1/images/*', requireKey);
  app.use('/api/images/*', requireKey);
  app.use('/v1/models', requireKey);
  app.use('/v1/models/*', requireKey);
  app.use('/v1/img2img', requireKey);
  app.use('/v1/tasks/*', requireKey);
  app.use('/v3/*', requireKey);

  // Every request body is bounded (MAX_BODY_BYTES, 413) before anything reads it: after auth (which reads
  // headers only, so a request without a valid key is refused without its body being read) and before
  // idempotency, link-TTL and the routes, which only ever see an already-capped, buffered body.
  app.use('*', bodySizeLimit());

  // Idempotency-Key on every POST that generates (after auth: the ledger is per API key).
  app.use('/v1/images/generations', idempotency({ now: options.now }));
  app.use('/api/images/generations', idempotency({ now: options.now }));
  app.use('/v1/images/edits', idempotency({ now: options.now }));
  app.use('/v1/images/variations', idempotency({ now: options.now }));
  app.use('/v1/img2img', idempotency({ now: options.now }));
  app.use('/v3/async/*', idempotency({ now: options.now }));

  // Per-request signed-link lifetime (`link_ttl_seconds`) on every route that returns links.
  app.use('/v1/images/generations', linkTtl());
  app.use('/api/images/generations', linkTtl());
  app.use('/v1/images/edits', linkTtl());
  app.use('/v1/images/variations', linkTtl());
  app.use('/v1/img2img', linkTtl());
  app.use('/v1/tasks/*', linkTtl());
  app.use('/v3/async/*', linkTtl());

  const images = openAiImagesRoutes({ catalog, now: options.now });
  app.route('/v1/images', images);
  app.route('/api/images', images);
  app.route('/v1/images', openAiEditRoutes({ catalog, now: options.now }));
  app.route('/v1/img2img', img2imgRoutes({ catalog, now: options.now }));
  app.route('/v1/tasks', tasksRoutes({ catalog, now: options.now }));
  app.route('/v3', asyncTaskRoutes({ catalog, now: options.now }));
  app.route('/v1/models', modelsRoutes({ catalog }));
  return app;
}
