import type { BackendModel } from '@image-api/shared/api/models';
import { isHfReference, parseHfReference } from '@image-api/shared/hf-reference';
import { ApiError, modelNotFound } from '../lib/api-error';
import type { EdgeConfig } from '../lib/edge-config';
import type { GpuClient } from './backend-client';
import { GpuBackendPool } from './backend-pool';

/** How long the GPU service's model list is reused before it is fetched again. */
export const MODEL_CACHE_TTL_MS = 10_000;

/**
 * A briefly cached copy of the GPU service's GET /v1/models, owned by one app instance (one per
 * Worker isolate), keyed by backend URL so a changed GPU_SERVICE_URL is never served stale data.
 *
 * It also keeps the isolate's GPU backend pools ({@link backendPool}): the catalog is the one
 * per-app-instance object every route already receives, so health marks and in-flight counts are
 * shared by all requests of the isolate without a module-level global.
 */
export class ModelCatalog {
  private readonly entries = new Map<string, { models: BackendModel[]; fetchedAt: number }>();
  private readonly pools = new Map<string, GpuBackendPool>();

  constructor(
    private readonly ttlMs: number = MODEL_CACHE_TTL_MS,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /**
   * The GPU client for `config`'s backends (GPU_BACKENDS, else GPU_SERVICE_URL) with health-based
   * choice and failover (backend-pool.ts): one pool per backend set and token, kept for the life
   * of this catalog. Pass its `key` as `backendUrl` to {@link list}/{@link findCheckpoint}.
   */
  backendPool(config: Pick<EdgeConfig, 'gpuBackendUrls' | 'gpuServiceToken'>): GpuBackendPool {
    const id = `${config.gpuBackendUrls.join(',')}\n${config.gpuServiceToken}`;
    let pool = this.pools.get(id);
    if (!pool) {
      pool = new GpuBackendPool({ urls: config.gpuBackendUrls, token: config.gpuServiceToken, now: this.now });
      this.pools.set(id, pool);
    }
    return pool;
  }

  /** The model list, from cache when younger than the TTL. @throws ApiError from the client. */
  async list(client: Pick<GpuClient, 'listModels'>, backendUrl: string): Promise<BackendModel[]> {
    const cached = this.entries.get(backendUrl);
    if (cached && this.now() - cached.fetchedAt < this.ttlMs) return cached.models;
    const models = await client.listModels();
    this.entries.set(backendUrl, { models, fetchedAt: this.now() });
    return models;
  }

  /**
   * The model list with everything `complete` looks for: a cached list that lacks it (an add-on dropped into
   * MODELS_DIR since, or one that was broken and may have been fixed) is fetched again once, as
   * {@link findCheckpoint} does for checkpoints. @throws ApiError from the client.
   */
  async listHaving(client: Pick<GpuClient, 'listModels'>, backendUrl: string, complete: (models: readonly BackendModel[]) => boolean): Promise<BackendModel[]> {
    const models = await this.list(client, backendUrl);
    if (complete(models)) return models;
    this.entries.delete(backendUrl);
    return this.list(client, backendUrl);
  }

  /**
   * The checkpoint named `id`. A miss on a cached list re-fetches once, so a model added to the
   * GPU service is usable at once. A checkpoint the GPU service lists with an `error` (a broken folder)
   * cannot run: 503 `model_unavailable` with that error, rather than a confusing size or job failure.
   * @throws ApiError 404 `model_not_found` / 503 `model_unavailable` (param "model").
   */
  async findCheckpoint(client: Pick<GpuClient, 'listModels'>, backendUrl: string, id: string): Promise<BackendModel> {
    const find = (models: BackendModel[]) => models.find((model) => model.id === id && model.kind === 'checkpoint');
    if (isHfReference(id)) {
      // Validate the form first: a malformed reference is the caller's error, not a missing model.
      try {
        parseHfReference(id);
      } catch (error) {
        throw new ApiError(400, 'invalid_request_error', 'invalid_model_reference', `model: ${(error as Error).message}`, 'model');
      }
    }
    const usable = (model: BackendModel): BackendModel => {
      if (model.error) {
        throw new ApiError(503, 'server_error', 'model_unavailable', `The model "${id}" cannot be loaded: ${model.error}`, 'model', { 'retry-after': '30' });
      }
      return model;
    };
    const found = find(await this.list(client, backendUrl));
    if (found && !found.error) return found;
    // A miss, or a broken model that may have been fixed since the list was cached: look again.
    this.entries.delete(backendUrl);
    const fresh = find(await this.list(client, backendUrl));
    if (fresh) return usable(fresh);
    if (isHfReference(id)) return hfCheckpoint(id, await this.list(client, backendUrl));
    throw modelNotFound(id);
  }
}

/** Size assumed for a Hugging Face reference the GPU service has not downloaded yet (SD 1.x native). */
export const HF_DEFAULT_NATIVE_SIZE: [number, number] = [512, 512];

/**
 * A `hf.co/<org>/<repo>[:<tag or file>]` model: the downloaded folder when the GPU service lists it
 * (`<org>--<repo>[--<tag>]`), else a stand-in that sends the reference itself to the GPU service, which
 * downloads it (HF_ENDPOINT) before running the job; until then its size is assumed to be SD 1.x's.
 */
function hfCheckpoint(ref: string, models: BackendModel[]): BackendModel {
  const { folderName } = parseHfReference(ref);
  const local = models.find((model) => model.id === folderName && model.kind === 'checkpoint');
  if (local && !local.error) return local;
  return {
    id: ref,
    kind: 'checkpoint',
    capabilities: ['txt2img', 'img2img', 'inpaint'],
    native_size: HF_DEFAULT_NATIVE_SIZE,
    max_pixels: 1024 * 1024,
    loaded: false,
  };
}
