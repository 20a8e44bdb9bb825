import { Hono } from 'hono';
import type { AppEnv } from '../env';
import type { ModelCatalog } from '../gpu/model-catalog';

/** Dependencies shared by the route factories (see app.ts). */
export interface RouteOptions {
  catalog: ModelCatalog;
  /** Clock in unix milliseconds (tests may pin it). */
  now?: () => number;
}

/** GET /openapi.json and GET /docs (no auth). (Placeholder: being implemented.) */
export function docsRoutes(_options: RouteOptions): Hono<AppEnv> {
  return new Hono<AppEnv>();
}
