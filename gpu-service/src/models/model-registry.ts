/**
 * The models this service can run: every sub-folder of MODELS_DIR with a model_index.json. Models load
 * lazily on first use (one load at a time per model); a folder that fails to load is reported with its
 * error and never stops the others.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { SessionOptions } from '../onnx/session';
import { loadDiffusionModel, readModelInfo, type DiffusionModel, type ModelInfo } from './diffusion-model';

/** One row of GET /v1/models. */
export interface ModelListing {
  id: string;
  kind: 'checkpoint';
  capabilities: string[];
  native_size: [number, number];
  max_pixels: number;
  loaded: boolean;
  error?: string;
}

export class ModelRegistry {
  private readonly loaded = new Map<string, Promise<DiffusionModel>>();
  private readonly loadErrors = new Map<string, string>();

  constructor(
    readonly modelsDir: string,
    private readonly sessionOptions: SessionOptions,
  ) {}

  /** Names of the model folders present now. */
  async names(): Promise<string[]> {
    let entries;
    try {
      entries = await readdir(this.modelsDir, { withFileTypes: true });
    } catch {
      return [];
    }
    return entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();
  }

  /** Facts and state of every model folder (broken folders included, with their error). */
  async list(): Promise<ModelListing[]> {
    const rows: ModelListing[] = [];
    for (const name of await this.names()) {
      let info: ModelInfo | undefined;
      let error = this.loadErrors.get(name);
      try {
        info = await readModelInfo(join(this.modelsDir, name));
      } catch (err) {
        error = (err as Error).message;
      }
      rows.push({
        id: name,
        kind: 'checkpoint',
        capabilities: info ? (info.hasVaeEncoder ? ['txt2img', 'img2img', 'inpaint'] : ['txt2img']) : [],
        native_size: info?.nativeSize ?? [0, 0],
        max_pixels: info?.maxPixels ?? 0,
        loaded: this.loaded.has(name) && !error,
        ...(error ? { error } : {}),
      });
    }
    return rows;
  }

  /**
   * The loaded model, loading it on first use.
   * @throws Error('not found') with `code = 'model_not_found'` when no such folder exists; the load error otherwise.
   */
  async get(name: string): Promise<DiffusionModel> {
    const existing = this.loaded.get(name);
    if (existing) return existing;
    if (!/^[\w.-]+$/.test(name) || !(await this.names()).includes(name)) {
      throw Object.assign(new Error(`model ${name} not found`), { code: 'model_not_found' });
    }
    const loading = loadDiffusionModel(join(this.modelsDir, name), this.sessionOptions);
    this.loaded.set(name, loading);
    try {
      const model = await loading;
      this.loadErrors.delete(name);
      return model;
    } catch (err) {
      this.loaded.delete(name);
      this.loadErrors.set(name, (err as Error).message);
      throw err;
    }
  }

  /** Release every loaded session. */
  async close(): Promise<void> {
    const all = [...this.loaded.values()];
    this.loaded.clear();
    await Promise.allSettled(all.map(async (p) => (await p).release()));
  }
}
