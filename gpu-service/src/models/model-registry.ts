/**
 * The models this service can run: every visible sub-folder of MODELS_DIR (hidden `.download-*` folders
 * are partial downloads and never listed; `checkpoints/`, `loras/`, `embeddings/`, `vae/` and `tokenizers/`
 * hold files of those kinds, not models named after the folder), and every checkpoint file or diffusers folder
 * under MODELS_DIR/checkpoints/, whose id is its relative path (checkpoint-catalog.ts). Checkpoints are built by
 * the checkpoint engine (gpu-service/src/checkpoints) into the conversion cache on first load.
 * - Listing: kind (checkpoint, lora, vae, textual inversion — model-folder.ts), capabilities, native
 *   size, loaded or not, and the error of a broken folder (which never stops the others).
 * - Loading: lazy, on first use, followed by a warm-up run; one load at a time per model.
 * - Memory: a model's footprint is estimated from its ONNX files' sizes; when loading one would exceed
 *   MODEL_MEMORY_BUDGET, idle models are unloaded least recently used first. A model with a running job
 *   (a held lease) is never unloaded: the new load waits until enough becomes idle. A model larger than
 *   the whole budget is refused with an error.
 * - `hf.co/<org>/<repo>[:<tag or file>]` references are downloaded into MODELS_DIR (hf-download.ts); two
 *   jobs naming the same reference share one download. What may be downloaded is the operator's
 *   HfDownloadPolicy (hf-policy.ts), checked when the job is admitted: the repository must match
 *   HF_ALLOWED_REPOS unless the job carries `download_any_repo`; the listing's sizes must fit
 *   HF_MAX_MODEL_BYTES and MODELS_DIR_MAX_BYTES (files on disk plus downloads under way). HF_TOKEN goes only
 *   to allowed repositories. A downloaded folder that is broken or fails its first load is removed again.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { loadCheckpointModel, type CheckpointEngineOptions } from '../checkpoints/checkpoint-engine';
import { isSafetensorsDiffusersFolder } from '../checkpoints/open-checkpoint';
import { CHECKPOINTS_FOLDER, listCheckpointFiles } from './checkpoint-catalog';
import { CheckpointInspector, type CheckpointFacts } from './checkpoint-inspection';
import { AddonCatalog } from '../addons/addon-catalog';
import { PostprocessCatalog, POSTPROCESS_FOLDERS } from '../postprocess/postprocess-catalog';
import { facerestoreRole } from '../postprocess/postprocess-interfaces';
import { PostprocessSessions } from '../postprocess/postprocess-sessions';
import { hasAddons, NO_ADDONS, type ResolvedAddons } from '../addons/job-addons';
import { ModelVariants } from '../addons/model-variants';
import { errors, ServiceError } from '../lib/errors';
import type { SessionOptions } from '../onnx/session';
import { loadDiffusionModel, type DiffusionModel } from './diffusion-model';
import { downloadHfModel, folderBytes, HfLimitError, HfReferenceError, planHfDownload, type DownloadProgress, type HfDownloadPlan } from './hf-download';
import { CLOSED_POLICY, repoAllowed, type HfDownloadPolicy } from './hf-policy';
import { downloadForbiddenRule } from '@image-api/shared/hf-allowed-repos';
import { isHfReference, parseHfReference, type HfReference } from '@image-api/shared/hf-reference';
import { inspectModelFolder, singleCheckpointFile, type ModelCapability, type ModelFolder, type ModelKind } from './model-folder';
import { warmUpModel } from './warm-up';

/** One row of GET /v1/models (docs/architecture.md). */
export interface ModelListing {
  id: string;
  kind: ModelKind;
  capabilities: ModelCapability[];
  native_size: [number, number];
  max_pixels: number;
  loaded: boolean;
  /** Estimated memory footprint: bytes of the folder's ONNX files (checkpoints: their weights in the run dtype). */
  size_bytes: number;
  error?: string;
  /** Checkpoints only: format, architecture, prediction type, stored and run dtypes, conversion cache state. */
  format?: CheckpointFacts['format'];
  /** Checkpoints: the detected architecture; add-ons (LoRA, embedding, VAE files): the architecture they fit. */
  architecture?: string;
  /** Checkpoints: a release variant the tensors cannot tell (SD 3.5 Large `turbo`). */
  variant?: string;
  prediction_type?: CheckpointFacts['prediction_type'];
  /** Flow models: the canonical sampler ids they accept. */
  samplers?: string[];
  stored_dtype?: string;
  gguf_architecture?: string;
  dtype?: string;
  cache?: CheckpointFacts['cache'];
  /** Face-restoration models: `detector` or `restorer` (postprocess/postprocess-interfaces.ts). */
  role?: 'detector' | 'restorer';
}

/** A loaded model held for a job; `release()` lets the registry unload it again when memory is short. */
export interface ModelLease {
  model: DiffusionModel;
  release(): void;
}

/** Something that happened to a model (for logs and metrics). */
export type RegistryEvent =
  | { type: 'loaded'; name: string; seconds: number; bytes: number; source: 'conversion' | 'cache' | 'onnx' }
  | { type: 'load_failed'; name: string; error: string }
  | { type: 'unloaded'; name: string; bytes: number; reason: 'memory_budget' | 'close' }
  | { type: 'downloaded'; name: string; ref: string; seconds: number }
  /**
   * A checkpoint's graphs were built into the conversion cache (`cached`: they were already there);
   * `optimizationSeconds`: onnxruntime optimized and saved them for the execution provider during this load
   * (checkpoints/optimized-graphs.ts), `optimizationError`: why that failed (the original graphs were opened).
   */
  | { type: 'converted'; name: string; seconds: number; cached: boolean; optimizationSeconds: number; optimizationError?: string };

export interface ModelRegistryOptions {
  sessionOptions: SessionOptions;
  /** Bytes of ONNX files loaded at once (0 or absent = no limit). */
  memoryBudgetBytes?: number;
  /** Run warmUpModel after each load (default true). */
  warmUp?: boolean;
  /** Hugging Face endpoint for hf.co references (default https://huggingface.co). */
  hfEndpoint?: string;
  /** Sent only to repositories `hfPolicy.allowedRepos` matches. */
  hfToken?: string;
  /** What hf.co references may download (default: nothing for tenants, no size limits). */
  hfPolicy?: HfDownloadPolicy;
  /** The checkpoint engine's settings (conversion cache, tokenizer folder, float type); without them checkpoint
   * files are listed as unavailable. */
  checkpoints?: CheckpointEngineOptions;
  /** Bytes of LoRA-patched and base weights model variants may keep (0 = no limit). */
  addonMemoryBudgetBytes?: number;
  onEvent?: (e: RegistryEvent) => void;
}

/** How a job's `model` resolved: a local folder name, possibly still to be downloaded (by this plan). */
export interface ResolvedModel {
  name: string;
  download?: HfDownloadPlan;
}

/** Options of {@link ModelRegistry.resolve}. */
export interface ResolveOptions {
  /** The job may download any repository, not only HF_ALLOWED_REPOS (an API key with `models:download`). */
  downloadAnyRepo?: boolean;
}

interface Entry {
  name: string;
  footprint: number;
  /** Holders: leases plus an in-flight load. */
  refs: number;
  lastUsed: number;
  loading: Promise<DiffusionModel>;
  model?: DiffusionModel;
}

interface Download {
  /** Bytes the download will add to MODELS_DIR (its plan's total; 0 when unknown). */
  bytes: number;
  promise: Promise<void>;
  listeners: Set<(p: DownloadProgress) => void>;
  last?: DownloadProgress;
}

/** Folders of MODELS_DIR that hold files of a kind rather than being a model themselves. */
export const RESERVED_FOLDERS = new Set([CHECKPOINTS_FOLDER, 'loras', 'embeddings', 'vae', 'tokenizers', ...Object.values(POSTPROCESS_FOLDERS)]);

export class ModelRegistry {
  private readonly entries = new Map<string, Entry>();
  private readonly loadErrors = new Map<string, string>();
  private readonly downloads = new Map<string, Download>();
  /** Folders downloaded by this process that have not loaded yet: removed when they turn out broken. */
  private readonly freshDownloads = new Set<string>();
  private releaseWaiters: Array<() => void> = [];
  /** New loads are admitted one at a time, so two loads never both count the same free memory. */
  private admission: Promise<unknown> = Promise.resolve();
  private readonly closing = new AbortController();
  private readyCheck?: Promise<{ ok: boolean; reason?: string }>;
  private readonly checkpointInspector?: CheckpointInspector;
  /** The LoRAs, embeddings and VAEs of MODELS_DIR/loras, embeddings, vae. */
  readonly addons: AddonCatalog;
  /** The matting, face-restoration and upscaler models of MODELS_DIR/matting, facerestore, upscale_models. */
  readonly postprocess: PostprocessCatalog;
  /** Their onnxruntime sessions (one per file, opened on first use). */
  readonly postprocessSessions: PostprocessSessions;
  private readonly variants?: ModelVariants;

  constructor(
    readonly modelsDir: string,
    private readonly opts: ModelRegistryOptions,
  ) {
    this.addons = new AddonCatalog(modelsDir);
    this.postprocess = new PostprocessCatalog(modelsDir);
    this.postprocessSessions = new PostprocessSessions(opts.sessionOptions);
    if (opts.checkpoints) {
      this.checkpointInspector = new CheckpointInspector(opts.checkpoints);
      this.variants = new ModelVariants({ engine: opts.checkpoints, sessionOptions: opts.sessionOptions, budgetBytes: opts.addonMemoryBudgetBytes });
    }
  }

  /** Names of the top-level model folders present now (hidden and reserved folders excluded). */
  private async folderNames(): Promise<string[]> {
    let entries;
    try {
      entries = await readdir(this.modelsDir, { withFileTypes: true });
    } catch {
      return [];
    }
    return entries.filter((e) => e.isDirectory() && !e.name.startsWith('.') && !RESERVED_FOLDERS.has(e.name)).map((e) => e.name);
  }

  /** Ids of every model present now: top-level folders and checkpoints (by relative path), sorted. */
  async names(): Promise<string[]> {
    const [folders, checkpoints] = await Promise.all([this.folderNames(), listCheckpointFiles(this.modelsDir)]);
    return [...folders, ...checkpoints.map((c) => c.id)].sort();
  }

  /**
   * Facts of one model, or undefined when there is none of that id. Ids are matched against what is on disk,
   * never joined into a path unchecked, so `..` or absolute ids name nothing.
   */
  async inspect(name: string): Promise<ModelFolder | undefined> {
    const checkpoint = (await listCheckpointFiles(this.modelsDir)).find((c) => c.id === name);
    if (checkpoint) return this.inspectCheckpoint({ id: name, path: checkpoint.path, format: checkpoint.format });
    if (!(await this.folderNames()).includes(name)) return undefined;
    const dir = join(this.modelsDir, name);
    if (await isSafetensorsDiffusersFolder(dir)) return this.inspectCheckpoint({ id: name, path: dir, format: 'diffusers' });
    // An hf.co download of a GGUF / single-file repository: a folder holding that one file.
    const single = await singleCheckpointFile(dir);
    if (single) return this.inspectCheckpoint({ id: name, path: single.path, format: single.format });
    return inspectModelFolder(name, dir);
  }

  private async inspectCheckpoint(ref: { id: string; path: string; format: CheckpointFacts['format'] }): Promise<ModelFolder> {
    if (!this.checkpointInspector) {
      return { name: ref.id, dir: ref.path, kind: 'checkpoint', capabilities: [], footprintBytes: 0, error: 'this service runs without the checkpoint engine', checkpoint: { format: ref.format, dtype: 'float32', cache: 'missing' } };
    }
    return this.checkpointInspector.inspect(ref);
  }

  /** Facts and state of every model folder (broken folders included, with their error). */
  async list(): Promise<ModelListing[]> {
    const rows: ModelListing[] = [];
    for (const name of await this.names()) {
      const folder = await this.inspect(name);
      if (!folder) continue; // removed while listing
      const error = folder.error ?? this.loadErrors.get(name);
      const c = folder.checkpoint;
      rows.push({
        id: name,
        kind: folder.kind,
        capabilities: folder.capabilities,
        native_size: folder.info?.nativeSize ?? [0, 0],
        max_pixels: folder.info?.maxPixels ?? 0,
        loaded: this.entries.get(name)?.model !== undefined,
        size_bytes: folder.footprintBytes,
        ...(error ? { error } : {}),
        ...(c
          ? {
              format: c.format,
              ...(c.architecture ? { architecture: c.architecture } : {}),
              ...(c.variant ? { variant: c.variant } : {}),
              ...(c.prediction_type ? { prediction_type: c.prediction_type } : {}),
              ...(c.samplers ? { samplers: c.samplers } : {}),
              ...(c.stored_dtype ? { stored_dtype: c.stored_dtype } : {}),
              ...(c.gguf_architecture ? { gguf_architecture: c.gguf_architecture } : {}),
              dtype: c.dtype,
              cache: c.cache,
            }
          : {}),
      });
    }
    for (const a of await this.addons.list()) {
      rows.push({
        id: a.id,
        kind: a.kind,
        capabilities: [],
        native_size: [0, 0],
        max_pixels: 0,
        loaded: false,
        size_bytes: a.sizeBytes,
        ...(a.baseArchitecture ? { architecture: a.baseArchitecture } : {}),
        ...(a.error ? { error: a.error } : {}),
      });
    }
    for (const p of await this.postprocess.list()) {
      rows.push({
        id: p.id,
        kind: p.kind,
        capabilities: [],
        native_size: [0, 0],
        max_pixels: 0,
        loaded: this.postprocessSessions.openPaths().includes(p.path),
        size_bytes: p.sizeBytes,
        ...(p.kind === 'facerestore' ? { role: facerestoreRole(p.id, p.sidecar) } : {}),
        ...(p.error ? { error: p.error } : {}),
      });
    }
    return rows;
  }

  /** Names of the models loaded now. */
  loadedNames(): string[] {
    return [...this.entries.values()].filter((e) => e.model).map((e) => e.name);
  }

  /** Bytes (ONNX file sizes) of the models loaded or loading now. */
  loadedBytes(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.footprint;
    return n;
  }

  /**
   * Check a job's `model` before the job is queued (cheap: no session is opened).
   * An hf.co reference not downloaded yet is checked against the download policy and planned from the hub's
   * listing here, so a refusal is the job's admission status.
   * @throws ServiceError 404 model_not_found, 400 for a malformed hf.co reference, a tag naming no file (or
   *         several) or a model that is not a checkpoint, 403 model_download_forbidden for a repository outside
   *         HF_ALLOWED_REPOS, 413 model_too_large over HF_MAX_MODEL_BYTES / MODELS_DIR_MAX_BYTES, 502
   *         model_download_failed when the listing fails, 503 model_unavailable for a broken folder.
   */
  async resolve(model: string, options: ResolveOptions = {}): Promise<ResolvedModel> {
    let name = model;
    let download: HfReference | undefined;
    if (isHfReference(model)) {
      try {
        download = parseHfReference(model);
      } catch (err) {
        throw errors.invalidModelReference(model, (err as Error).message);
      }
      name = download.folderName;
    }
    // A loaded model needs no look at the disk: every job would otherwise list MODELS_DIR and re-read the
    // folder's configs (a few % of CPU at tiny-model job rates).
    if (this.entries.get(name)?.model) return { name };
    const folder = await this.inspect(name);
    if (!folder) {
      if (download) return { name, download: await this.planDownload(download, options) };
      throw errors.modelNotFound(model, await this.names());
    }
    if (folder.error) throw errors.modelBroken(model, folder.error);
    if (folder.kind !== 'checkpoint') throw errors.notACheckpoint(model, folder.kind);
    return { name };
  }

  /** The download policy in force. */
  get hfPolicy(): HfDownloadPolicy {
    return this.opts.hfPolicy ?? CLOSED_POLICY;
  }

  /** The token for `repo`: only repositories the operator allows get it. */
  private tokenFor(repo: string): string | undefined {
    return repoAllowed(this.hfPolicy.allowedRepos, repo) ? this.opts.hfToken : undefined;
  }

  /** Policy check, listing and size checks of a reference not on disk yet (see {@link resolve}). */
  private async planDownload(ref: HfReference, options: ResolveOptions): Promise<HfDownloadPlan> {
    const policy = this.hfPolicy;
    if (!options.downloadAnyRepo && !repoAllowed(policy.allowedRepos, ref.repo)) {
      throw errors.modelDownloadForbidden(ref.ref, downloadForbiddenRule(policy.allowedRepos, ref.repo));
    }
    let plan: HfDownloadPlan;
    try {
      plan = await planHfDownload(ref, { endpoint: this.opts.hfEndpoint ?? 'https://huggingface.co', token: this.tokenFor(ref.repo), signal: this.closing.signal });
    } catch (err) {
      if (err instanceof HfReferenceError) throw errors.invalidModelReference(ref.ref, err.message);
      throw errors.modelDownloadFailed(ref.ref, (err as Error).message);
    }
    if (plan.totalBytes !== null) await this.checkSize(ref, plan.totalBytes, ref.folderName);
    return plan;
  }

  /**
   * HF_MAX_MODEL_BYTES and MODELS_DIR_MAX_BYTES for `bytes` more (downloads under way, other than `own`, count).
   * @throws ServiceError 413 model_too_large naming the limit.
   */
  private async checkSize(ref: HfReference, bytes: number, own: string): Promise<void> {
    const { maxModelBytes, modelsDirMaxBytes } = this.hfPolicy;
    if (maxModelBytes > 0 && bytes > maxModelBytes) {
      throw errors.modelTooLarge(ref.ref, `its files take ${bytes} bytes, more than HF_MAX_MODEL_BYTES (${maxModelBytes})`);
    }
    if (modelsDirMaxBytes > 0) {
      let pending = 0;
      for (const [name, d] of this.downloads) if (name !== own) pending += d.bytes;
      const used = (await folderBytes(this.modelsDir)) + pending;
      if (used + bytes > modelsDirMaxBytes) {
        throw errors.modelTooLarge(ref.ref, `its files take ${bytes} bytes and MODELS_DIR holds ${used}, more than MODELS_DIR_MAX_BYTES (${modelsDirMaxBytes}) together`);
      }
    }
  }

  /** The most bytes a download may receive: the per-model cap and what the disk budget leaves (undefined: no cap). */
  private async byteCap(own: string): Promise<number | undefined> {
    const { maxModelBytes, modelsDirMaxBytes } = this.hfPolicy;
    const caps: number[] = [];
    if (maxModelBytes > 0) caps.push(maxModelBytes);
    if (modelsDirMaxBytes > 0) {
      let pending = 0;
      for (const [name, d] of this.downloads) if (name !== own) pending += d.bytes;
      caps.push(Math.max(0, modelsDirMaxBytes - (await folderBytes(this.modelsDir)) - pending));
    }
    return caps.length ? Math.min(...caps) : undefined;
  }

  /**
   * Download a planned hf.co reference into MODELS_DIR (shared by every job waiting for it).
   * @param onProgress receives {bytes, total} as the files arrive.
   * @throws ServiceError 413 model_too_large when the bytes pass a size limit, 502 model_download_failed with
   *         the reason otherwise; nothing is left in MODELS_DIR then.
   */
  async download(plan: HfDownloadPlan, onProgress?: (p: DownloadProgress) => void): Promise<void> {
    const ref = plan.ref;
    let d = this.downloads.get(ref.folderName);
    if (!d) {
      const started = performance.now();
      const created: Download = { bytes: plan.totalBytes ?? 0, listeners: new Set(), promise: Promise.resolve() };
      this.downloads.set(ref.folderName, created);
      created.promise = (async () => {
        // Re-checked now: other downloads may have started since this job was admitted.
        if (plan.totalBytes !== null) await this.checkSize(ref, plan.totalBytes, ref.folderName);
        const maxBytes = await this.byteCap(ref.folderName);
        await downloadHfModel(plan, this.modelsDir, {
        endpoint: this.opts.hfEndpoint ?? 'https://huggingface.co',
        token: this.tokenFor(ref.repo),
        maxBytes,
        signal: this.closing.signal,
        onProgress: (p) => {
          created.last = p;
          for (const l of created.listeners) l(p);
        },
        });
      })().then(
        async () => {
          this.downloads.delete(ref.folderName);
          this.freshDownloads.add(ref.folderName);
          // A download that is no usable model (broken, or nothing it can run) is not kept.
          const folder = await this.inspect(ref.folderName);
          const unusable = !folder ? undefined : folder.error ?? (folder.kind === 'checkpoint' && folder.capabilities.length === 0 ? 'it cannot run any mode' : undefined);
          if (unusable) {
            await this.removeDownloaded(ref.folderName);
            throw new Error(`the downloaded files are no usable model: ${unusable}`);
          }
          if (folder && folder.kind !== 'checkpoint') this.freshDownloads.delete(ref.folderName);
          this.opts.onEvent?.({ type: 'downloaded', name: ref.folderName, ref: ref.ref, seconds: (performance.now() - started) / 1000 });
        },
        (err) => {
          this.downloads.delete(ref.folderName);
          throw err;
        },
      );
      d = created;
    }
    if (onProgress) {
      d.listeners.add(onProgress);
      if (d.last) onProgress(d.last);
    }
    try {
      await d.promise;
    } catch (err) {
      if (err instanceof ServiceError) throw err;
      if (err instanceof HfLimitError) throw errors.modelTooLarge(ref.ref, err.message);
      throw errors.modelDownloadFailed(ref.ref, (err as Error).message);
    } finally {
      if (onProgress) d.listeners.delete(onProgress);
    }
  }

  /**
   * The loaded model, loading it (and warming it up) on first use; hold the lease while a job runs.
   * @throws ServiceError 404 for an unknown model, 400 for a non-checkpoint, 503 model_unavailable when the
   *         folder is broken, fails to load, or is larger than MODEL_MEMORY_BUDGET.
   */
  async acquire(name: string, addons: ResolvedAddons = NO_ADDONS): Promise<ModelLease> {
    const lease = await this.acquireBase(name);
    if (!hasAddons(addons)) return lease;
    if (!this.variants) {
      lease.release();
      throw new ServiceError(400, 'invalid_request', 'this service runs without the checkpoint engine: no LoRAs, embeddings or VAE overrides', addons.loras[0]?.param ?? 'loras');
    }
    try {
      const variant = await this.variants.acquire(lease.model, addons);
      return {
        model: variant.model,
        release: () => {
          variant.release();
          lease.release();
        },
      };
    } catch (err) {
      lease.release();
      throw err;
    }
  }

  private async acquireBase(name: string): Promise<ModelLease> {
    let entry = this.entries.get(name);
    if (entry) entry.refs++;
    else entry = await this.admit(name);
    let model: DiffusionModel;
    try {
      model = await entry.loading;
    } catch (err) {
      entry.refs--;
      if (err instanceof ServiceError) throw err;
      throw errors.modelBroken(name, (err as Error).message);
    }
    entry.lastUsed = Date.now();
    let released = false;
    const e = entry;
    return {
      model,
      release: () => {
        if (released) return;
        released = true;
        e.refs--;
        e.lastUsed = Date.now();
        this.wakeWaiters();
      },
    };
  }

  /** The loaded model (kept loaded; no lease held). Prefer acquire() for running jobs. */
  async get(name: string): Promise<DiffusionModel> {
    const lease = await this.acquire(name);
    lease.release();
    return lease.model;
  }

  /**
   * Readiness: true when a model is loaded, or the first model that loads now (tried in name order).
   * @returns ok, or the reason no model can run.
   */
  async ensureRunnable(): Promise<{ ok: boolean; reason?: string }> {
    if (this.loadedNames().length > 0) return { ok: true };
    this.readyCheck ??= (async () => {
      const reasons: string[] = [];
      for (const name of await this.names()) {
        const folder = await this.inspect(name);
        if (!folder || folder.kind !== 'checkpoint') continue;
        if (folder.error || folder.capabilities.length === 0) {
          reasons.push(`${name}: ${folder.error ?? 'cannot run any mode'}`);
          continue;
        }
        try {
          (await this.acquire(name)).release();
          return { ok: true };
        } catch (err) {
          reasons.push(`${name}: ${(err as Error).message}`);
        }
      }
      return { ok: false, reason: reasons.length ? `no model can be loaded (${reasons.join('; ')})` : `no model in ${this.modelsDir}` };
    })().finally(() => (this.readyCheck = undefined));
    return this.readyCheck;
  }

  /** Release every loaded session and stop downloads. */
  async close(): Promise<void> {
    this.closing.abort(new Error('the service is shutting down'));
    await this.variants?.close();
    await this.postprocessSessions.close();
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.allSettled(
      all.map(async (e) => {
        await (await e.loading).release();
        this.opts.onEvent?.({ type: 'unloaded', name: e.name, bytes: e.footprint, reason: 'close' });
      }),
    );
  }

  /** Create the entry for a model not loaded yet (its first holder counted), making room first. */
  private admit(name: string): Promise<Entry> {
    const run = this.admission.then(async () => {
      const existing = this.entries.get(name);
      if (existing) {
        existing.refs++;
        return existing;
      }
      const folder = await this.inspect(name);
      if (!folder) throw errors.modelNotFound(name, await this.names());
      if (folder.error) throw errors.modelBroken(name, folder.error);
      if (folder.kind !== 'checkpoint') throw errors.notACheckpoint(name, folder.kind);
      const budget = this.opts.memoryBudgetBytes ?? 0;
      if (budget > 0 && folder.footprintBytes > budget) {
        const what = folder.checkpoint ? `its weights take ${folder.footprintBytes} bytes as ${folder.checkpoint.dtype}` : `its ONNX files take ${folder.footprintBytes} bytes`;
        const message = `${what}, more than MODEL_MEMORY_BUDGET (${budget})`;
        this.loadErrors.set(name, message);
        throw errors.modelBroken(name, message);
      }
      await this.makeRoom(folder.footprintBytes);
      const entry: Entry = { name, footprint: folder.footprintBytes, refs: 1, lastUsed: Date.now(), loading: this.load(name, folder) };
      entry.loading.then(
        (model) => (entry.model = model),
        () => {
          if (this.entries.get(name) === entry) this.entries.delete(name);
          this.wakeWaiters();
        },
      );
      this.entries.set(name, entry);
      return entry;
    });
    this.admission = run.catch(() => undefined);
    return run;
  }

  private async load(name: string, folder: ModelFolder): Promise<DiffusionModel> {
    const started = performance.now();
    try {
      let model: DiffusionModel;
      let source: 'conversion' | 'cache' | 'onnx' = 'onnx';
      if (folder.checkpoint) {
        if (!this.opts.checkpoints) throw new Error('this service runs without the checkpoint engine');
        const loaded = await loadCheckpointModel({ id: name, path: folder.dir, format: folder.checkpoint.format }, this.opts.checkpoints, this.opts.sessionOptions);
        this.opts.onEvent?.({
          type: 'converted',
          name,
          seconds: loaded.conversionSeconds,
          cached: !loaded.converted,
          optimizationSeconds: loaded.optimizationSeconds,
          ...(loaded.optimizationError ? { optimizationError: loaded.optimizationError } : {}),
        });
        model = loaded.model;
        source = loaded.converted ? 'conversion' : 'cache';
      } else {
        model = await loadDiffusionModel(folder.dir, this.opts.sessionOptions);
      }
      if (this.opts.warmUp ?? true) {
        try {
          await warmUpModel(model);
        } catch (err) {
          await model.release();
          throw new Error(`warm-up run failed: ${(err as Error).message}`);
        }
      }
      this.loadErrors.delete(name);
      this.freshDownloads.delete(name);
      this.opts.onEvent?.({ type: 'loaded', name, seconds: (performance.now() - started) / 1000, bytes: folder.footprintBytes, source });
      return model;
    } catch (err) {
      const message = (err as Error).message;
      this.loadErrors.set(name, message);
      // A model this process just downloaded and that does not load is not left behind on disk.
      if (this.freshDownloads.has(name)) await this.removeDownloaded(name);
      this.opts.onEvent?.({ type: 'load_failed', name, error: message });
      throw err;
    }
  }

  /** Remove a folder this process downloaded (a failed load or an unusable download). */
  private async removeDownloaded(name: string): Promise<void> {
    this.freshDownloads.delete(name);
    this.loadErrors.delete(name);
    await rm(join(this.modelsDir, name), { recursive: true, force: true });
  }

  /** Unload idle models, least recently used first, until `bytes` more fit; wait while all are busy. */
  private async makeRoom(bytes: number): Promise<void> {
    const budget = this.opts.memoryBudgetBytes ?? 0;
    if (budget <= 0) return;
    while (this.loadedBytes() + bytes > budget) {
      const idle = [...this.entries.values()].filter((e) => e.refs === 0 && e.model).sort((a, b) => a.lastUsed - b.lastUsed);
      const victim = idle[0];
      if (victim) {
        this.entries.delete(victim.name);
        await this.variants?.dropModel(victim.model!.dir);
        await victim.model!.release();
        this.opts.onEvent?.({ type: 'unloaded', name: victim.name, bytes: victim.footprint, reason: 'memory_budget' });
        continue;
      }
      await new Promise<void>((resolve) => this.releaseWaiters.push(resolve));
    }
  }

  private wakeWaiters(): void {
    const waiters = this.releaseWaiters;
    this.releaseWaiters = [];
    for (const w of waiters) w();
  }
}
