import { Hono } from 'hono';
import type { PublicModelList } from '@image-api/shared/api/models';
import type { AppEnv } from '../env';
import type { ModelCatalog } from '../gpu/model-catalog';
import { readEdgeConfig } from '../lib/edge-config';

/** Dependencies of the models route. */
export interface ModelsRouteOptions {
  catalog: ModelCatalog;
}

/** `owned_by` of every model: they are all served by this deployment. */
export const MODEL_OWNER = 'image-api';

/**
 * GET /v1/models: OpenAI's list shape ({object: "list", data: [{id, object: "model", created,
 * owned_by}]}) plus kind, capabilities, native_size [w, h] and max_pixels from the GPU service.
 * `created` is 0: the GPU service does not report when a model was added.
 */
export function modelsRoutes(options: ModelsRouteOptions): Hono<AppEnv> {
  const routes = new Hono<AppEnv>();
  routes.get('/', async (c) => {
    const config = readEdgeConfig(c.env);
    // Every GPU backend (GPU_BACKENDS) with failover; they are assumed to serve the same models.
    const pool = options.catalog.backendPool(config);
    const models = await options.catalog.list(pool, pool.key);
    const body: PublicModelList = {
      object: 'list',
      data: models.map((model) => ({
        id: model.id,
        object: 'model',
        created: 0,
        owned_by: MODEL_OWNER,
        kind: model.kind,
        capabilities: model.capabilities,
        native_size: model.native_size,
        max_pixels: model.max_pixels,
      })),
    };
    return c.json(body);
  });
  return routes;
}
