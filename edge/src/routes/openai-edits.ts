import { Hono } from 'hono';
import type { AppEnv } from '../env';
import type { ModelCatalog } from '../gpu/model-catalog';

/** Dependencies shared by the route factories (see app.ts). */
export interface RouteOptions {
  catalog: ModelCatalog;
  /** Clock in unix milliseconds (tests may pin it). */
  now?: () => number;
}

/** POST /v1/images/edits and /v1/images/variations (multipart). (Placeholder: being implemented.) */
export function openAiEditRoutes(_options: RouteOptions): Hono<AppEnv> {
  return new Hono<AppEnv>();
}
