import { Hono } from 'hono';
import type { AppEnv } from '../env';
import type { ModelCatalog } from '../gpu/model-catalog';

/** Dependencies shared by the route factories (see app.ts). */
export interface RouteOptions {
  catalog: ModelCatalog;
  /** Clock in unix milliseconds (tests may pin it). */
  now?: () => number;
}

/** POST /v3/async/txt2img|img2img|inpainting, GET /v3/async/task-result, GET /v3/model. (Placeholder: being implemented.) */
export function asyncTaskRoutes(_options: RouteOptions): Hono<AppEnv> {
  return new Hono<AppEnv>();
}
