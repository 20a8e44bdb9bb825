import { Hono } from 'hono';
import { hasScope, MODELS_DOWNLOAD_SCOPE } from '@image-api/shared/api/api-key';
import type { BackendModel, PublicModelList } from '@image-api/shared/api/models';
import type { AppEnv } from '../env';
import type { ModelCatalog } from '../gpu/model-catalog';
import { readEdgeConfig } from '../lib/edge-config';

/** Dependencies of the models route. */
export interface ModelsRouteOptions {
  catalog: ModelCatalog;
}

/** The checkpoint facts (a face-restoration model's role) and the error of a GPU-service model, only the fields it has. */
export function checkpointFacts(model: BackendModel): Pick<BackendModel, 'format' | 'architecture' | 'variant' | 'prediction_type' | 'samplers' | 'stored_dtype' | 'gguf_architecture' | 'dtype' | 'cache' | 'role' | 'error'> {
  const out: ReturnType<typeof checkpointFacts> = {};
  for (const key of ['format', 'architecture', 'variant', 'prediction_type', 'samplers', 'stored_dtype', 'gguf_architecture', 'dtype', 'cache', 'role', 'error'] as const) {
    if (model[key] !== undefined) (out as Record<string, unknown>)[key] = model[key];
  }
  return out;
}

/** `owned_by` of every model: they are all served by this deployment. */
export const MODEL_OWNER = 'image-api';

/**
 * GET /v1/models: OpenAI's list shape ({object: "list", data: [{id, object: "model", created,
 * owned_by}]}) plus kind, capabilities, native_size [w, h] and max_pixels from the GPU service, and for
 * checkpoints built by the engine their format, architecture, prediction type, dtypes and cache state (and the
 * reason a broken one cannot be used).
 * `created` is 0: the GPU service does not report when a model was added.
 * `hf_downloads`: what `hf.co/<org>/<repo>` references may download — the GPU service's HF_ALLOWED_REPOS,
 * HF_MAX_MODEL_BYTES and MODELS_DIR_MAX_BYTES when it reports them, and `any_repository` for a key with the
 * `models:download` scope.
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
        ...checkpointFacts(model),
      })),
      hf_downloads: { ...(models.hf_downloads ?? {}), any_repository: hasScope(c.get('apiKey'), MODELS_DOWNLOAD_SCOPE) },
    };
    return c.json(body);
  });
  return routes;
}
