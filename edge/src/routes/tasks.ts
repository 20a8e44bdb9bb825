import { Hono } from 'hono';
import type { AppEnv } from '../env';
import type { ModelCatalog } from '../gpu/model-catalog';

/** Dependencies shared by the route factories (see app.ts). */
export interface RouteOptions {
  catalog: ModelCatalog;
  /** Clock in unix milliseconds (tests may pin it). */
  now?: () => number;
}

/** GET /v1/tasks/:id, GET /v1/tasks/:id/events (resumable SSE relay), DELETE /v1/tasks/:id. (Placeholder: being implemented.) */
export function tasksRoutes(_options: RouteOptions): Hono<AppEnv> {
  return new Hono<AppEnv>();
}
