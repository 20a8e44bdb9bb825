/**
 * GPU service settings from the environment, checked once at start-up (a bad setting fails at start,
 * not on the first request).
 *
 * MODELS_DIR (./models), GPU_SERVICE_TOKEN (required, ≥ 16 chars), GPU_HOST (127.0.0.1), GPU_PORT (8788),
 * ORT_EXECUTION_PROVIDERS (cpu; e.g. "cuda,cpu", "tensorrt,cuda,cpu", "webgpu,cpu"), ORT_INTRA_OP_THREADS
 * (0 = onnxruntime's default), ORT_INTER_OP_THREADS / ORT_EXECUTION_MODE / ORT_CPU_MEM_ARENA / ORT_MEM_PATTERN /
 * ORT_ALLOW_SPINNING / ORT_GRAPH_OPTIMIZATION (unset = onnxruntime's default; see loadOrtTuning), QUEUE_MAX (16), JOB_CONCURRENCY (1), JOB_START_TIMEOUT (300 s),
 * JOB_TIMEOUT (900 s), PREVIEW_INTERVAL (1 step), JOB_RETAIN_SECONDS (600), MAX_BATCH (8 images),
 * BATCH_WINDOW_MS (10), MODEL_MEMORY_BUDGET (0 = no limit, bytes), HF_ENDPOINT (https://huggingface.co),
 * HF_TOKEN (unset; sent only to allowed repositories), HF_ALLOWED_REPOS (empty: no downloads for tenants),
 * HF_MAX_MODEL_BYTES (0 = no cap), MODELS_DIR_MAX_BYTES (0 = no budget; models/hf-policy.ts), DEFAULT_BASE_SD1 / _SD2 / _SDXL / _FLUX / _SD3 (unset; checkpoints/default-bases.ts), SHUTDOWN_GRACE (30 s), MODEL_WARMUP (1), ADDON_MEMORY_BUDGET (0), CHECKPOINT_DTYPE (auto), CHECKPOINT_ATTENTION
 * (contrib), CLIP_TOKENIZER_DIR (MODELS_DIR/tokenizers/clip-vit-large-patch14), T5_TOKENIZER_DIR
 * (MODELS_DIR/tokenizers/t5-v1_1-xxl), UPSCALE_TILE_SIZE (192 px; 0 = no tiles) and
 * UPSCALE_TILE_OVERLAP (8 px) for upscaler models (postprocess/upscale-tiles.ts), LOG_LEVEL (info; read by main.ts).
 */
import { loadDefaultBases, type DefaultBases } from './checkpoints/default-bases';
import { keepQuantizedFromEnv } from './graphs/quantized-linear';
import { join, resolve } from 'node:path';
import type { ExecutionProvider, SessionOptions } from './onnx/session';
import { parseAllowedRepos, type HfDownloadPolicy } from './models/hf-policy';
import { DEFAULT_TILE_OPTIONS, type TileOptions } from './postprocess/upscale-tiles';

/** The onnxruntime session settings besides providers and intra-op threads (README: *onnxruntime settings*). */
export type OrtTuning = Pick<SessionOptions, 'interOpNumThreads' | 'executionMode' | 'enableCpuMemArena' | 'enableMemPattern' | 'allowSpinning' | 'graphOptimizationLevel'>;

export interface ServiceConfig {
  /** Folder holding one sub-folder per model (diffusers/Optimum ONNX layout). */
  modelsDir: string;
  /** Bearer token every route except /healthz requires. */
  serviceToken: string;
  host: string;
  port: number;
  executionProviders: ExecutionProvider[];
  /** onnxruntime intra-op threads (0 = its default). */
  intraOpNumThreads: number;
  /** The other onnxruntime session settings; a field left out keeps onnxruntime's default. */
  ortTuning: OrtTuning;
  /** Jobs allowed to wait (not counting running ones) before POST /v1/jobs answers 503. */
  queueMax: number;
  /** Jobs running at once on this device. */
  concurrency: number;
  /** A job not started within this many seconds is dropped (0 = never). */
  startTimeoutSeconds: number;
  /** A job running longer than this in total is cancelled (0 = never). */
  jobTimeoutSeconds: number;
  /** Minimum steps between two previews. */
  previewInterval: number;
  /** Seconds a finished job's events stay readable. */
  retainSeconds: number;
  /** Most images (sum of the jobs' batch_size) in one batched run; 1 turns dynamic batching off. With CFG
   * the UNet call itself holds twice as many rows (unconditional and conditional halves). */
  maxBatch: number;
  /** Milliseconds a batch that is not full waits for compatible jobs before it starts (0 = no wait). */
  batchWindowMs: number;
  /** Bytes of ONNX files that may be loaded at once; least recently used idle models are unloaded
   * to stay under it (0 = no limit). */
  modelMemoryBudget: number;
  /** Hugging Face endpoint `hf.co/<org>/<repo>` model references are resolved against. */
  hfEndpoint: string;
  /** Optional Hugging Face access token (gated or private repositories). */
  hfToken?: string;
  /** What hf.co references may download: HF_ALLOWED_REPOS, HF_MAX_MODEL_BYTES, MODELS_DIR_MAX_BYTES. */
  hfPolicy: HfDownloadPolicy;
  /** Seconds SIGTERM waits for queued and running jobs before cancelling them. */
  shutdownGraceSeconds: number;
  /** Run one UNet/VAE call right after a model loads, so the first job does not pay for kernel set-up. */
  modelWarmUp: boolean;
  /** Bytes of LoRA-patched and base weights that model variants may keep (0 = no limit). */
  addonMemoryBudget: number;
  /**
   * Float type the checkpoint engine builds graphs in: 'auto' = float16 when the first execution provider is a
   * GPU one (cuda, tensorrt, dml, webgpu, coreml), float32 on CPU; or 'float32' / 'float16'.
   */
  checkpointDtype: 'auto' | 'float32' | 'float16';
  /** Attention ops in built graphs: 'contrib' (onnxruntime's fused MultiHeadAttention) or 'standard' ONNX ops. */
  checkpointAttention: 'contrib' | 'standard';
  /** CLIP BPE files (vocab.json, merges.txt) for single-file checkpoints, which carry no tokenizer. */
  clipTokenizerDir: string;
  /**
   * T5 tokenizer folder (`tokenizer.json`, optional `tokenizer_config.json` / `special_tokens_map.json`) for FLUX.1 /
   * SD 3.x single files that carry their T5 encoder but, being single files, no tokenizer.
   */
  t5TokenizerDir?: string;
  /** DEFAULT_BASE_SD1 / _SD2 / _SDXL / _FLUX / _SD3: the base a part-less file without a sidecar base uses (checkpoints/default-bases.ts). */
  defaultBases: DefaultBases;
  /** SDXL_REFINER_MODEL: the refiner a job with refiner_switch_at > 0 uses when it names no refiner_model. */
  sdxlRefinerModel?: string;
  /** UPSCALE_TILE_SIZE / UPSCALE_TILE_OVERLAP: input pixels per upscaler-model tile and shared by neighbours. */
  upscaleTiles: TileOptions;
}

/** Default MAX_BATCH (images per batched UNet run). */
export const DEFAULT_MAX_BATCH = 8;
/** Default BATCH_WINDOW_MS. */
export const DEFAULT_BATCH_WINDOW_MS = 10;
/** Default HF_ENDPOINT. */
export const DEFAULT_HF_ENDPOINT = 'https://huggingface.co';

const PROVIDERS: ExecutionProvider[] = ['cpu', 'cuda', 'tensorrt', 'webgpu', 'dml', 'coreml'];

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer ≥ ${min}, got "${raw}"`);
  return n;
}

/** UPSCALE_TILE_SIZE and UPSCALE_TILE_OVERLAP. @throws Error when the overlap is not less than a non-zero tile size. */
function loadUpscaleTiles(env: NodeJS.ProcessEnv): TileOptions {
  const tileSize = int(env, 'UPSCALE_TILE_SIZE', DEFAULT_TILE_OPTIONS.tileSize, 0);
  const tileOverlap = int(env, 'UPSCALE_TILE_OVERLAP', DEFAULT_TILE_OPTIONS.tileOverlap, 0);
  if (tileSize > 0 && tileOverlap >= tileSize) throw new Error(`UPSCALE_TILE_OVERLAP (${tileOverlap}) must be less than UPSCALE_TILE_SIZE (${tileSize})`);
  return { tileSize, tileOverlap };
}

function bool(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = (env[name] ?? '').trim().toLowerCase();
  if (raw === '') return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  if (['0', 'false', 'no', 'off'].includes(raw)) return false;
  throw new Error(`${name} must be 1/0 (or true/false), got "${env[name]}"`);
}

function oneOf<T extends string>(env: NodeJS.ProcessEnv, name: string, values: readonly T[], fallback: T): T {
  const raw = (env[name] ?? '').trim().toLowerCase();
  if (raw === '') return fallback;
  if (!values.includes(raw as T)) throw new Error(`${name} must be one of ${values.join(', ')}, got "${env[name]}"`);
  return raw as T;
}

/**
 * ORT_INTER_OP_THREADS, ORT_EXECUTION_MODE, ORT_CPU_MEM_ARENA, ORT_MEM_PATTERN, ORT_ALLOW_SPINNING,
 * ORT_GRAPH_OPTIMIZATION: each unset = onnxruntime's default (the defaults the README's measurements chose).
 * @throws Error naming the variable when a value is invalid.
 */
export function loadOrtTuning(env: NodeJS.ProcessEnv = process.env): OrtTuning {
  const tuning: OrtTuning = {};
  const set = (name: string) => (env[name] ?? '').trim() !== '';
  if (set('ORT_INTER_OP_THREADS')) tuning.interOpNumThreads = int(env, 'ORT_INTER_OP_THREADS', 0);
  if (set('ORT_EXECUTION_MODE')) tuning.executionMode = oneOf(env, 'ORT_EXECUTION_MODE', ['sequential', 'parallel'] as const, 'sequential');
  if (set('ORT_CPU_MEM_ARENA')) tuning.enableCpuMemArena = bool(env, 'ORT_CPU_MEM_ARENA', true);
  if (set('ORT_MEM_PATTERN')) tuning.enableMemPattern = bool(env, 'ORT_MEM_PATTERN', true);
  if (set('ORT_ALLOW_SPINNING')) tuning.allowSpinning = bool(env, 'ORT_ALLOW_SPINNING', true);
  if (set('ORT_GRAPH_OPTIMIZATION')) tuning.graphOptimizationLevel = oneOf(env, 'ORT_GRAPH_OPTIMIZATION', ['basic', 'extended', 'all'] as const, 'all');
  return tuning;
}

/** The float type checkpoints are built in for these providers (CHECKPOINT_DTYPE 'auto'). */
export function checkpointFloatType(setting: ServiceConfig['checkpointDtype'], providers: readonly string[]): 'float32' | 'float16' {
  if (setting !== 'auto') return setting;
  return ['cuda', 'tensorrt', 'dml', 'webgpu', 'coreml'].includes(providers[0] ?? 'cpu') ? 'float16' : 'float32';
}

function endpoint(env: NodeJS.ProcessEnv): string {
  const raw = env.HF_ENDPOINT || DEFAULT_HF_ENDPOINT;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`HF_ENDPOINT must be an http(s) URL, got "${raw}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`HF_ENDPOINT must be an http(s) URL, got "${raw}"`);
  return raw.replace(/\/+$/, '');
}

/** The settings that decide where models are and how checkpoints are built (shared with `npm run models`). */
export type ModelSettings = Pick<ServiceConfig, 'modelsDir' | 'executionProviders' | 'checkpointDtype' | 'checkpointAttention' | 'clipTokenizerDir' | 't5TokenizerDir' | 'hfEndpoint' | 'defaultBases'>;

/**
 * Read the model settings: MODELS_DIR, ORT_EXECUTION_PROVIDERS, CHECKPOINT_DTYPE, CHECKPOINT_ATTENTION,
 * CLIP_TOKENIZER_DIR, T5_TOKENIZER_DIR, HF_ENDPOINT, DEFAULT_BASE_<FAMILY>; GGUF_KEEP_QUANTIZED is validated.
 * @throws Error naming the variable when a value is invalid.
 */
export function loadModelSettings(env: NodeJS.ProcessEnv = process.env): ModelSettings {
  const providers = (env.ORT_EXECUTION_PROVIDERS ?? 'cpu').split(',').map((p) => p.trim().toLowerCase()).filter(Boolean);
  for (const p of providers) {
    if (!PROVIDERS.includes(p as ExecutionProvider)) {
      throw new Error(`ORT_EXECUTION_PROVIDERS: unknown execution provider "${p}" (accepted: ${PROVIDERS.join(', ')})`);
    }
  }
  const modelsDir = resolve(env.MODELS_DIR ?? 'models');
  // Read where graphs are built (graphs/quantized-linear.ts); checked here so a bad value stops the start.
  keepQuantizedFromEnv(env);
  return {
    modelsDir,
    executionProviders: providers as ExecutionProvider[],
    checkpointDtype: oneOf(env, 'CHECKPOINT_DTYPE', ['auto', 'float32', 'float16'] as const, 'auto'),
    checkpointAttention: oneOf(env, 'CHECKPOINT_ATTENTION', ['contrib', 'standard'] as const, 'contrib'),
    clipTokenizerDir: resolve(env.CLIP_TOKENIZER_DIR || join(modelsDir, 'tokenizers', 'clip-vit-large-patch14')),
    t5TokenizerDir: resolve(env.T5_TOKENIZER_DIR || join(modelsDir, 'tokenizers', 't5-v1_1-xxl')),
    hfEndpoint: endpoint(env),
    defaultBases: loadDefaultBases(env),
  };
}

/**
 * Read the configuration.
 * @throws Error naming the variable when a value is invalid or GPU_SERVICE_TOKEN is missing.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  const serviceToken = env.GPU_SERVICE_TOKEN ?? '';
  if (serviceToken.length < 16) throw new Error('GPU_SERVICE_TOKEN must be set to a secret of at least 16 characters');
  return {
    ...loadModelSettings(env),
    serviceToken,
    host: env.GPU_HOST ?? '127.0.0.1',
    port: int(env, 'GPU_PORT', 8788, 0),
    intraOpNumThreads: int(env, 'ORT_INTRA_OP_THREADS', 0),
    ortTuning: loadOrtTuning(env),
    queueMax: int(env, 'QUEUE_MAX', 16, 1),
    concurrency: int(env, 'JOB_CONCURRENCY', 1, 1),
    startTimeoutSeconds: int(env, 'JOB_START_TIMEOUT', 300),
    jobTimeoutSeconds: int(env, 'JOB_TIMEOUT', 900),
    previewInterval: int(env, 'PREVIEW_INTERVAL', 1, 1),
    retainSeconds: int(env, 'JOB_RETAIN_SECONDS', 600),
    maxBatch: int(env, 'MAX_BATCH', DEFAULT_MAX_BATCH, 1),
    batchWindowMs: int(env, 'BATCH_WINDOW_MS', DEFAULT_BATCH_WINDOW_MS, 0),
    modelMemoryBudget: int(env, 'MODEL_MEMORY_BUDGET', 0, 0),
    hfToken: env.HF_TOKEN || undefined,
    hfPolicy: {
      allowedRepos: parseAllowedRepos(env.HF_ALLOWED_REPOS),
      maxModelBytes: int(env, 'HF_MAX_MODEL_BYTES', 0, 0),
      modelsDirMaxBytes: int(env, 'MODELS_DIR_MAX_BYTES', 0, 0),
    },
    shutdownGraceSeconds: int(env, 'SHUTDOWN_GRACE', 30, 0),
    modelWarmUp: bool(env, 'MODEL_WARMUP', true),
    addonMemoryBudget: int(env, 'ADDON_MEMORY_BUDGET', 0, 0),
    sdxlRefinerModel: env.SDXL_REFINER_MODEL?.trim() || undefined,
    upscaleTiles: loadUpscaleTiles(env),
  };
}
