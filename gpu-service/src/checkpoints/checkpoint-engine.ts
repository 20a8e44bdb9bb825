/**
 * The checkpoint engine's front door: a checkpoint file or folder → (once) graphs in the conversion cache →
 * (once per execution provider, where saved: optimized-graphs.ts) onnxruntime's optimized graphs beside them →
 * a loaded DiffusionModel that the ordinary pipeline runs. Also the cheap inspection the model listing shows.
 *
 * Cache key: SHA-256 over the engine's graph version, the float type and attention kind, GGUF_KEEP_QUANTIZED's
 * choice (graphs/quantized-linear.ts), the SHA-256 of every
 * weights file, the sidecar and the tokenizer files — so a changed file, sidecar or engine never reuses a stale
 * entry, and identical files under two names share one.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildClipTextEncoder } from '../graphs/clip-text-encoder';
import type { AttentionKind } from '../graphs/layers';
import type { FloatType } from '../graphs/onnx-graph';
import { buildUnetGraph } from '../graphs/unet';
import { buildVaeDecoder, buildVaeEncoder } from '../graphs/vae';
import { loadDiffusionModel, type DiffusionModel } from '../models/diffusion-model';
import type { SessionOptions } from '../onnx/session';
import type { LayerNormParams } from '../diffusion/final-layer-norm';
import { listCheckpointFiles } from '../models/checkpoint-catalog';
import { lacksParts, withBaseModel } from './base-model';
import { ContentHashes } from './content-hash';
import { ConversionCache, type CacheEntry, type CacheEntryPlan } from './conversion-cache';
import { describeModel, type ModelSpec } from './model-spec';
import type { FlowModelSpec } from './flow-spec';
import { isFlowFamily, loadFlowCheckpoint } from './convert-flow';
import { optimizedGraphs } from './optimized-graphs';
import { detectVaeConfig, type VaeHints } from './detect/vae-config';
import { readSidecar } from './sidecar';
import { DEFAULT_BASE_ENV, type DefaultBases } from './default-bases';
import { diffusersVaeKeyMap, ldmVaeShape } from './key-maps/diffusers-vae';
import { openSafetensors } from '../weights/safetensors';
import type { TensorFile } from '../weights/tensor-file';
import { WeightSet } from '../weights/weight-set';
import { keptGgmlTypes } from '../graphs/quantized-linear';
import { CheckpointError, openDiffusersFolder, openGgufCheckpoint, openSingleFile, pickleRefusal, type CheckpointParts } from './open-checkpoint';

/** Bumped whenever a graph builder's output changes, so old cache entries are not reused. */
export const ENGINE_GRAPH_VERSION = 2;

/** Engine settings shared by every checkpoint of a service. */
export interface CheckpointEngineOptions {
  cache: ConversionCache;
  hashes: ContentHashes;
  /** Folder with the CLIP BPE files (vocab.json, merges.txt) for checkpoints that carry no tokenizer. */
  tokenizerDir: string;
  /**
   * T5 tokenizer folder (`tokenizer.json`, …) for flow-family checkpoints that carry their T5 encoder but no tokenizer
   * folder (single files); a model's own or its base's `tokenizer_2/` / `tokenizer_3/` comes first.
   */
  t5TokenizerDir?: string;
  /** Graph float type: float16 for GPU execution providers, float32 on CPU. */
  floatType: FloatType;
  attention: AttentionKind;
  /**
   * Finds the checkpoint a sidecar's `"base"` names (a model id under MODELS_DIR/checkpoints); without it a
   * UNet / transformer-only file stays unusable.
   */
  resolveBase?: (id: string) => Promise<CheckpointRef | undefined>;
  /** The deployment's base per family (DEFAULT_BASE_FLUX, …) for files that lack parts and whose sidecar names none. */
  defaultBases?: DefaultBases;
}

/**
 * The engine options of a service (or of `npm run models`) over MODELS_DIR: the conversion cache in
 * `MODELS_DIR/.cache`, its content hashes, the CLIP tokenizer folder, and the float type for the providers.
 */
export function checkpointEngineFor(
  modelsDir: string,
  settings: { floatType: FloatType; attention: AttentionKind; tokenizerDir?: string; t5TokenizerDir?: string; defaultBases?: DefaultBases },
): CheckpointEngineOptions {
  const cache = new ConversionCache(join(modelsDir, '.cache'));
  return {
    cache,
    hashes: new ContentHashes(cache.root),
    tokenizerDir: settings.tokenizerDir ?? join(modelsDir, 'tokenizers', 'clip-vit-large-patch14'),
    t5TokenizerDir: settings.t5TokenizerDir ?? join(modelsDir, 'tokenizers', 't5-v1_1-xxl'),
    floatType: settings.floatType,
    attention: settings.attention,
    defaultBases: settings.defaultBases ?? {},
    resolveBase: async (id) => {
      const found = (await listCheckpointFiles(modelsDir)).find((c) => c.id === id);
      return found && found.format !== 'pickle' ? { id: found.id, path: found.path, format: found.format } : undefined;
    },
  };
}

/** A checkpoint on disk. */
export interface CheckpointRef {
  /** Model id (relative path under MODELS_DIR/checkpoints, or a folder name). */
  id: string;
  path: string;
  format: 'safetensors' | 'gguf' | 'diffusers' | 'pickle';
}

/**
 * Open a checkpoint's weights.
 * @throws CheckpointError for pickle files; the readers' errors otherwise.
 */
export async function openCheckpoint(ref: CheckpointRef, engine?: Pick<CheckpointEngineOptions, 'resolveBase' | 'defaultBases'>): Promise<CheckpointParts> {
  let parts: CheckpointParts;
  switch (ref.format) {
    case 'safetensors':
      parts = await openSingleFile(ref.path);
      break;
    case 'diffusers':
      parts = await openDiffusersFolder(ref.path);
      break;
    case 'pickle':
      throw new CheckpointError(pickleRefusal(ref.path));
    case 'gguf':
      parts = await openGgufCheckpoint(ref.path);
      break;
  }
  if (!engine?.resolveBase) return parts;
  if (parts.configs.base !== undefined) return withBaseModel(ref, parts, engine.resolveBase);
  // No sidecar base: a file that lacks a part takes it from the deployment's default for its family, if it has one.
  const fallback = engine.defaultBases?.[parts.family];
  if (fallback && lacksParts(parts)) {
    return withBaseModel(ref, { ...parts, configs: { ...parts.configs, base: fallback } }, engine.resolveBase, undefined, `${DEFAULT_BASE_ENV[parts.family]}'s base`);
  }
  return parts;
}

/** The tokenizer files a checkpoint's graphs are used with (part of its cache key). */
export interface TokenizerFiles {
  vocab: Buffer;
  merges: Buffer;
  /** Flow models: the T5 tokenizer folder's tokenizer.json, tokenizer_config.json and special_tokens_map.json (absent ones undefined). */
  t5?: { tokenizerJson: Buffer; tokenizerConfig?: Buffer; specialTokensMap?: Buffer };
}

async function readOptionalFile(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch {
    return undefined;
  }
}

/**
 * The tokenizer files a checkpoint uses: a diffusers folder's own `tokenizer/` (the model's `tokenizerDirs.clip`),
 * else the deployment's CLIP BPE files (single files carry none); flow models also their T5 folder's
 * `tokenizer.json` (`tokenizerDirs.t5`, from the folder or its `base`; else the deployment's `t5TokenizerDir`).
 * @throws CheckpointError saying where to put them when neither exists, or that a flow model has no T5 tokenizer.
 */
export async function tokenizerFiles(
  ref: Pick<CheckpointRef, 'format' | 'path'>,
  engine: CheckpointEngineOptions,
  parts?: Pick<CheckpointParts, 'tokenizerDirs' | 'family'>,
): Promise<TokenizerFiles> {
  const own = parts?.tokenizerDirs?.clip ?? (ref.format === 'diffusers' ? join(ref.path, 'tokenizer') : undefined);
  const dirs = own ? [own, engine.tokenizerDir] : [engine.tokenizerDir];
  let clip: { vocab: Buffer; merges: Buffer } | undefined;
  for (const dir of dirs) {
    try {
      const [vocab, merges] = await Promise.all([readFile(join(dir, 'vocab.json')), readFile(join(dir, 'merges.txt'))]);
      clip = { vocab, merges };
      break;
    } catch {
      // try the next folder
    }
  }
  if (!clip) {
    throw new CheckpointError(
      `the CLIP tokenizer files are missing: put vocab.json and merges.txt of openai/clip-vit-large-patch14 into ${engine.tokenizerDir} (single-file checkpoints carry no tokenizer)`,
    );
  }
  if (parts?.family !== 'flux' && parts?.family !== 'sd3') return clip;
  const t5Dir = parts.tokenizerDirs?.t5 ?? engine.t5TokenizerDir;
  const tokenizerJson = t5Dir ? await readOptionalFile(join(t5Dir, 'tokenizer.json')) : undefined;
  if (!t5Dir || !tokenizerJson) {
    throw new CheckpointError(
      `the T5 tokenizer is missing: the model (or its sidecar's "base") needs a tokenizer folder with tokenizer.json (diffusers ${parts.family === 'flux' ? 'tokenizer_2' : 'tokenizer_3'}/)${engine.t5TokenizerDir ? `, or put the T5 tokenizer.json (google/t5-v1_1-xxl) into ${engine.t5TokenizerDir} (single files carry no tokenizer)` : ''}`,
    );
  }
  const [tokenizerConfig, specialTokensMap] = await Promise.all([readOptionalFile(join(t5Dir, 'tokenizer_config.json')), readOptionalFile(join(t5Dir, 'special_tokens_map.json'))]);
  return { ...clip, t5: { tokenizerJson, tokenizerConfig, specialTokensMap } };
}

/** The cache key and the checkpoint's own content hash (the receipt's model hash). */
export async function cacheKeyOf(
  parts: Pick<CheckpointParts, 'contentFiles' | 'sidecarBytes'>,
  engine: CheckpointEngineOptions,
  tokenizer: TokenizerFiles,
): Promise<{ key: string; sha256: string }> {
  const fileHashes = await Promise.all(parts.contentFiles.map((f) => engine.hashes.of(f)));
  const sha256 = fileHashes.length === 1 ? fileHashes[0] : createHash('sha256').update(fileHashes.join('\n')).digest('hex');
  const h = createHash('sha256');
  h.update(JSON.stringify({ engine: ENGINE_GRAPH_VERSION, floatType: engine.floatType, attention: engine.attention, keepQuantized: [...keptGgmlTypes(undefined, engine.floatType)].sort(), files: fileHashes }));
  if (parts.sidecarBytes) h.update(parts.sidecarBytes);
  h.update(tokenizer.vocab).update(tokenizer.merges);
  if (tokenizer.t5) {
    h.update(tokenizer.t5.tokenizerJson);
    if (tokenizer.t5.tokenizerConfig) h.update(tokenizer.t5.tokenizerConfig);
    if (tokenizer.t5.specialTokensMap) h.update(tokenizer.t5.specialTokensMap);
  }
  return { key: h.digest('hex').slice(0, 32), sha256 };
}

/** What a converted model's cache entry says about it (model_index.json's `image_api` object). */
export interface ConvertedFacts {
  id: string;
  sha256: string;
  family: string;
  architecture: string;
  prediction_type: string;
  stored_dtype: string;
  float_type: FloatType;
  capabilities: string[];
}

/** Build every graph of a described checkpoint into the cache (no-op when the entry exists). */
export async function convertCheckpoint(
  ref: CheckpointRef,
  parts: CheckpointParts,
  spec: ModelSpec,
  engine: CheckpointEngineOptions,
  onProgress?: CacheEntryPlan['onProgress'],
): Promise<CacheEntry & { sha256: string; key: string }> {
  const tokenizer = await tokenizerFiles(ref, engine, parts);
  const { key, sha256 } = await cacheKeyOf(parts, engine, tokenizer);
  const opts = { floatType: engine.floatType, attention: engine.attention };
  const text = spec.textEncoders[0];
  const facts: ConvertedFacts = {
    id: ref.id,
    sha256,
    family: spec.family,
    architecture: spec.architecture,
    prediction_type: spec.predictionType,
    stored_dtype: spec.storedDtype,
    float_type: engine.floatType,
    capabilities: spec.capabilities,
  };
  const finalNorm = text.config.layout === 'open_clip' ? 'ln_final' : 'text_model.final_layer_norm';
  const [normWeight, normBias] = await Promise.all([text.weights.read(`${finalNorm}.weight`), text.weights.read(`${finalNorm}.bias`)]);
  // The SDXL VAE overflows float16 (diffusers' `force_upcast`): its graphs are always float32, also on GPU
  // providers whose other graphs are float16.
  const vaeOpts = spec.sdxl ? { ...opts, floatType: 'float32' as const } : opts;
  const graphs = [
    { folder: 'text_encoder', build: () => buildClipTextEncoder(text.config, text.weights, opts) },
    { folder: 'unet', build: () => buildUnetGraph(spec.unet.config, spec.unet.weights, opts) },
    { folder: 'vae_decoder', build: () => buildVaeDecoder(spec.vae!.config, spec.vae!.weights, vaeOpts) },
  ];
  if (spec.vae!.config.encoder) graphs.push({ folder: 'vae_encoder', build: () => buildVaeEncoder(spec.vae!.config, spec.vae!.weights, vaeOpts) });
  // SDXL base: the second (OpenCLIP bigG) encoder and its tokenizer (same BPE files, pad "!"). The refiner's only
  // encoder is bigG, stored as text_encoder.
  const second = spec.sdxl?.kind === 'base' ? spec.textEncoders[1] : undefined;
  const secondFiles = second
    ? [
        { path: 'tokenizer_2/vocab.json', contents: tokenizer.vocab },
        { path: 'tokenizer_2/merges.txt', contents: tokenizer.merges },
        { path: 'tokenizer_2/special_tokens_map.json', contents: JSON.stringify({ bos_token: '<|startoftext|>', eos_token: '<|endoftext|>', unk_token: '<|endoftext|>', pad_token: second.padToken }) },
        { path: 'tokenizer_2/tokenizer_config.json', contents: JSON.stringify({ model_max_length: second.config.maxPositions }) },
      ]
    : [];
  if (second) graphs.push({ folder: 'text_encoder_2', build: () => buildClipTextEncoder(second.config, second.weights, opts) });
  const pipelineClass = spec.sdxl ? (spec.sdxl.kind === 'base' ? 'StableDiffusionXLPipeline' : 'StableDiffusionXLImg2ImgPipeline') : 'StableDiffusionPipeline';
  const entry = await engine.cache.ensure({
    key,
    graphs,
    onProgress,
    files: [
      ...secondFiles,
      {
        path: 'model_index.json',
        contents: JSON.stringify({ _class_name: pipelineClass, native_size: spec.nativeSize, image_api: facts, ...(spec.sdxl ? { sdxl: spec.sdxl } : {}) }, null, 1),
      },
      { path: 'scheduler/scheduler_config.json', contents: JSON.stringify(spec.scheduler, null, 1) },
      {
        path: 'vae_decoder/config.json',
        contents: JSON.stringify({ scaling_factor: spec.vae!.config.scalingFactor, shift_factor: spec.vae!.config.shiftFactor, norm_num_groups: spec.vae!.config.normGroups }),
      },
      { path: 'text_encoder/final_layer_norm.json', contents: JSON.stringify({ weight: Array.from(normWeight), bias: Array.from(normBias), eps: text.config.layerNormEps }) },
      { path: 'tokenizer/vocab.json', contents: tokenizer.vocab },
      { path: 'tokenizer/merges.txt', contents: tokenizer.merges },
      {
        path: 'tokenizer/special_tokens_map.json',
        contents: JSON.stringify({ bos_token: '<|startoftext|>', eos_token: '<|endoftext|>', unk_token: '<|endoftext|>', pad_token: text.padToken }),
      },
      { path: 'tokenizer/tokenizer_config.json', contents: JSON.stringify({ model_max_length: text.config.maxPositions }) },
    ],
  });
  return { ...entry, sha256, key };
}

/**
 * The weights of a standalone VAE file (an add-on replacing a checkpoint's VAE): LDM keys (`encoder.*`,
 * `decoder.*`, `quant_conv`, `post_quant_conv`, optionally under `first_stage_model.`) or diffusers AutoencoderKL
 * keys (`decoder.up_blocks.*`), renamed to the canonical LDM names.
 */
export function standaloneVaeWeights(file: TensorFile): WeightSet {
  const keys = [...file.entries.keys()];
  if (keys.some((k) => /^(encoder|decoder)\.(down|up|mid)_block/.test(k))) {
    return WeightSet.mapped(file, diffusersVaeKeyMap(keys), file.path, ldmVaeShape);
  }
  return WeightSet.fromFile(file, keys.some((k) => k.startsWith('first_stage_model.')) ? 'first_stage_model.' : '', file.path);
}

/**
 * Build a standalone VAE's encoder and decoder graphs into the cache (keyed by the file's content, the hints it is
 * built with, the engine version and float type).
 * @param base the replaced VAE's hints: its latent scaling (the new VAE works in the same latent space) and
 *        GroupNorm groups, which a `<name>.json` sidecar `{"vae": {"norm_num_groups": …}}` beside the file overrides.
 * @throws the reader's or detection's error (a file that is not a VAE, or one of another latent width).
 */
export async function convertStandaloneVae(path: string, engine: CheckpointEngineOptions, base: VaeHints): Promise<CacheEntry & { sha256: string }> {
  const sha256 = await engine.hashes.of(path);
  const sidecar = (await readSidecar(path))?.configs.vae;
  const groups = typeof sidecar?.norm_num_groups === 'number' ? sidecar.norm_num_groups : base.normGroups;
  const hints: VaeHints = { ...base, ...(groups ? { normGroups: groups } : {}) };
  const scaling = { scalingFactor: hints.scalingFactor ?? 0.18215, shiftFactor: hints.shiftFactor ?? 0 };
  const key = createHash('sha256')
    .update(JSON.stringify({ engine: ENGINE_GRAPH_VERSION, vae: sha256, hints, floatType: engine.floatType, attention: engine.attention, keepQuantized: [...keptGgmlTypes(undefined, engine.floatType)].sort() }))
    .digest('hex')
    .slice(0, 32);
  const file = await openSafetensors(path);
  try {
    const weights = standaloneVaeWeights(file);
    const config = detectVaeConfig(weights, hints);
    const opts = { floatType: engine.floatType, attention: engine.attention };
    const graphs = [{ folder: 'vae_decoder', build: () => buildVaeDecoder(config, weights, opts) }];
    if (config.encoder) graphs.push({ folder: 'vae_encoder', build: () => buildVaeEncoder(config, weights, opts) });
    const entry = await engine.cache.ensure({
      key,
      graphs,
      files: [
        { path: 'vae_decoder/config.json', contents: JSON.stringify(scaling) },
        { path: 'model_index.json', contents: JSON.stringify({ _class_name: 'AutoencoderKL', image_api: { sha256, latent_channels: config.latentChannels } }) },
      ],
    });
    return { ...entry, sha256 };
  } finally {
    await file.close();
  }
}

/** A loaded checkpoint and what loading it cost. */
export interface LoadedCheckpoint {
  model: DiffusionModel;
  spec: ModelSpec | FlowModelSpec;
  /** Whether this load built the cache entry, and the seconds spent converting and opening sessions. */
  converted: boolean;
  conversionSeconds: number;
  /**
   * Whether this load optimized the graphs for the execution provider and saved them in the entry, and the seconds
   * that took (0 when they were saved before, or are not saved for this provider: optimized-graphs.ts).
   */
  optimized: boolean;
  optimizationSeconds: number;
  /** Why the optimized graphs could not be saved, when that failed (the original graphs were opened). */
  optimizationError?: string;
  sessionSeconds: number;
  cacheDir: string;
}

/**
 * Convert (when not cached) and open a checkpoint.
 * @throws the opening / detection / conversion error, with the reason the model is broken.
 */
export async function loadCheckpointModel(ref: CheckpointRef, engine: CheckpointEngineOptions, sessionOptions: SessionOptions): Promise<LoadedCheckpoint> {
  const parts = await openCheckpoint(ref, engine);
  try {
    if (isFlowFamily(parts.family)) return await loadFlowCheckpoint(ref, parts, engine, sessionOptions);
    const spec = await describeModel(parts);
    const entry = await convertCheckpoint(ref, parts, spec, engine);
    const graphs = await optimizedGraphs(engine.cache, entry.key, sessionOptions);
    const started = performance.now();
    const norm = JSON.parse(await readFile(join(entry.dir, 'text_encoder/final_layer_norm.json'), 'utf8')) as { weight: number[]; bias: number[]; eps: number };
    const finalLayerNorm: LayerNormParams = { weight: Float32Array.from(norm.weight), bias: Float32Array.from(norm.bias), eps: norm.eps };
    const model = await loadDiffusionModel(entry.dir, sessionOptions, { name: ref.id, contentHash: entry.sha256, finalLayerNorm, builtByEngine: true, openNetwork: graphs.open });
    return {
      model,
      spec,
      converted: entry.built,
      conversionSeconds: entry.seconds,
      optimized: graphs.built,
      optimizationSeconds: graphs.seconds,
      optimizationError: graphs.error,
      sessionSeconds: (performance.now() - started) / 1000,
      cacheDir: entry.dir,
    };
  } finally {
    await parts.close();
  }
}
