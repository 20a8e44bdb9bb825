import type { BackendModel } from '../../../shared/src/api/models';
import { modelNotFound } from '../lib/api-error';
import type { GpuBackendClient } from './backend-client';

/** How long the GPU service's model list is reused before it is fetched again. */
export const MODEL_CACHE_TTL_MS = 10_000;

/**
 * A briefly cached copy of the GPU service's GET /v1/models, owned by one app instance (one per
 * Worker isolate), keyed by backend URL so a changed GPU_SERVICE_URL is never served stale data.
 */
export class ModelCatalog {
  private readonly entries = new Map<string, { models: BackendModel[]; fetchedAt: number }>();

  constructor(
    private readonly ttlMs: number = MODEL_CACHE_TTL_MS,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** The model list, from cache when younger than the TTL. @throws ApiError from the client. */
  async list(client: GpuBackendClient, backendUrl: string): Promise<BackendModel[]> {
    const cached = this.entries.get(backendUrl);
    if (cached && this.now() - cached.fetchedAt < this.ttlMs) return cached.models;
    const models = await client.listModels();
    this.entries.set(backendUrl, { models, fetchedAt: this.now() });
    return models;
  }

  /**
   * The checkpoint named `id`. A miss on a cached list re-fetches once, so a model added to the
   * GPU service is usable at once. @throws ApiError 404 `model_not_found` (param "model").
   */
  async findCheckpoint(client: GpuBackendClient, backendUrl: string, id: string): Promise<BackendModel> {
    const find = (models: BackendModel[]) => models.find((model) => model.id === id && model.kind === 'checkpoint');
    const found = find(await this.list(client, backendUrl));
    if (found) return found;
    this.entries.delete(backendUrl);
    const fresh = find(await this.list(client, backendUrl));
    if (!fresh) throw modelNotFound(id);
    return fresh;
  }
}
