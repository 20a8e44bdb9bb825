import { Hono } from 'hono';
import type { AppEnv } from '../env';
import type { ModelCatalog } from '../gpu/model-catalog';

/** Dependencies shared by the route factories (see app.ts). */
export interface RouteOptions {
  catalog: ModelCatalog;
  /** Clock in unix milliseconds (tests may pin it). */
  now?: () => number;
}

/** POST /v1/img2img (ComfyUI-named fields). (Placeholder: being implemented.) */
export function img2imgRoutes(_options: RouteOptions): Hono<AppEnv> {
  return new Hono<AppEnv>();
}
