/**
 * A diffusion model folder in the diffusers/Optimum ONNX layout (docs/architecture.md, "Models"), opened with
 * onnxruntime. Every constant the pipeline needs (VAE scaling factor, latent channels, prediction type,
 * noise table, native size) is read from the folder's own files and session metadata, never assumed.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, readFile, readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { OnnxModel, type SessionOptions, type ValueInfo } from '../onnx/session';
import { modelScheduleFromConfig } from '../diffusion/schedules';
import type { ModelSchedule } from '../diffusion/schedules/types';
import { loadClipTokenizer, type ClipTokenizer } from '../diffusion/tokenizer/clip-tokenizer';
import type { LayerNormParams } from '../diffusion/final-layer-norm';
import type { TextualInversionSet } from '../diffusion/text-conditioning';
import type { GenerationParams } from '@image-api/shared/generation-job';
import type { FlowComponents } from './flow-model';

/** Parsed facts about a model, available without loading its sessions. */
export interface ModelInfo {
  name: string;
  dir: string;
  /** [width, height] in pixels the model was trained at. */
  nativeSize: [number, number];
  /** Largest width × height (pixels) we accept for this model. */
  maxPixels: number;
  /** Factor applied to VAE latents before the UNet (diffusers `scaling_factor`). */
  scalingFactor: number;
  /** Added after dividing by the scaling factor before decoding (diffusers `shift_factor`, 0 for SD). */
  shiftFactor: number;
  hasVaeEncoder: boolean;
}

/**
 * An SDXL base or refiner model's conditioning (model_index.json's `sdxl` object, written by the checkpoint
 * engine; checkpoints/model-spec.ts `SdxlSpec`), with the base's second text encoder.
 */
export interface SdxlConditioning {
  kind: 'base' | 'refiner';
  /** Width of `text_embeds` (the bigG encoder's projection). */
  pooledDim: number;
  /** 6 (base) or 5 (refiner) time ids per image. */
  timeIdCount: 5 | 6;
  /** An empty negative prompt gives zero negative embeddings (diffusers `force_zeros_for_empty_prompt`). */
  forceZerosForEmptyPrompt: boolean;
  /** Base only: the OpenCLIP bigG encoder (`text_encoder_2/`) and its tokenizer (pads with "!"). */
  textEncoder2?: OnnxModel;
  tokenizer2?: ClipTokenizer;
  /** Hidden width of each encoder, in concatenation order ([768, 1280] base, [1280] refiner). */
  encoderWidths: number[];
}

/** A loaded model: sessions, tokenizer and schedule. */
export interface DiffusionModel extends ModelInfo {
  schedule: ModelSchedule;
  tokenizer: ClipTokenizer;
  textEncoder: OnnxModel;
  unet: OnnxModel;
  vaeDecoder: OnnxModel;
  vaeEncoder?: OnnxModel;
  /** UNet input channels: 4 for ordinary UNets, 9 for inpainting UNets. */
  unetInChannels: number;
  /** Latent channels produced by the UNet / consumed by the VAE decoder (4 for SD 1.x/2.x). */
  latentChannels: number;
  /**
   * Width of the UNet's encoder_hidden_states (768 for SD 1.x; SDXL: both encoders' widths concatenated, 2048;
   * the refiner's bigG alone, 1280). For SD 1.x/2.x also the text encoder's width.
   */
  hiddenSize: number;
  /** SDXL base / refiner conditioning (two encoders, pooled text_embeds, time ids); absent for SD 1.x / 2.x. */
  sdxl?: SdxlConditioning;
  /** sha256 (hex) over the folder's config and ONNX files (or of the checkpoint file), for the reproducibility receipt. */
  contentHash: string;
  /**
   * The text model's final LayerNorm, which clip_skip applies to an earlier hidden state; when absent it is
   * looked up among the text encoder's initializers (ONNX exports).
   */
  finalLayerNorm?: LayerNormParams;
  /** True for checkpoints the engine built: their initializers carry checkpoint keys, so add-ons can patch them. */
  builtByEngine?: boolean;
  /** Textual-inversion vectors the prompts of this model variant may name (addons/model-variants.ts). */
  textualInversion?: TextualInversionSet;
  /** The add-ons of this variant with their files' hashes, for the receipt. */
  addons?: Pick<GenerationParams, 'loras' | 'embeddings' | 'vae'>;
  /**
   * Set for flow-matching transformer models (FLUX.1, SD 3.x; models/flow-model.ts): then `unet` is the
   * transformer, `textEncoder` / `tokenizer` are CLIP-L's, `schedule` is the flow table at the native size, and
   * generation runs diffusion/pipelines/flow-generate.ts.
   */
  flow?: FlowComponents;
  release(): Promise<void>;
}

/** What a caller already knows about a folder (a conversion-cache entry): skips re-deriving it from the files. */
export interface KnownModelFacts {
  /** Id to report instead of the folder's base name. */
  name?: string;
  contentHash?: string;
  finalLayerNorm?: LayerNormParams;
  builtByEngine?: boolean;
  /**
   * Opens the network in `<dir>/<network>/` (`text_encoder`, `unet`, `vae_decoder`, `vae_encoder`) instead of
   * `OnnxModel.open(<dir>/<network>/model.onnx, sessionOptions)`: the checkpoint engine opens graphs it saved
   * optimized (checkpoints/optimized-graphs.ts).
   */
  openNetwork?: (network: string) => Promise<OnnxModel>;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

async function readJson(path: string): Promise<Record<string, unknown> | undefined> {
  if (!(await exists(path))) return undefined;
  return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
}

/** The first of the listed VAE config files that exists and names scaling_factor (default SD's 0.18215). */
async function readVaeConfig(dir: string): Promise<{ scalingFactor: number; shiftFactor: number }> {
  for (const rel of ['vae_decoder/config.json', 'vae/config.json', 'vae_encoder/config.json']) {
    const cfg = await readJson(join(dir, rel));
    if (cfg && typeof cfg.scaling_factor === 'number') {
      return { scalingFactor: cfg.scaling_factor, shiftFactor: typeof cfg.shift_factor === 'number' ? cfg.shift_factor : 0 };
    }
  }
  return { scalingFactor: 0.18215, shiftFactor: 0 };
}

/**
 * Read a model folder's facts without opening sessions.
 * @throws Error when model_index.json or the scheduler config is missing or unreadable.
 */
export async function readModelInfo(dir: string): Promise<ModelInfo> {
  const index = await readJson(join(dir, 'model_index.json'));
  if (!index) throw new Error(`${dir}: model_index.json is missing`);
  const vae = await readVaeConfig(dir);
  let nativeSize: [number, number] | undefined;
  const ns = index.native_size;
  if (Array.isArray(ns) && ns.length === 2) nativeSize = [Number(ns[0]), Number(ns[1])];
  if (!nativeSize) {
    const unetCfg = await readJson(join(dir, 'unet/config.json'));
    const sample = typeof unetCfg?.sample_size === 'number' ? unetCfg.sample_size * 8 : 512;
    nativeSize = [sample, sample];
  }
  const maxPixels = typeof index.max_pixels === 'number' ? index.max_pixels : Math.max(nativeSize[0] * nativeSize[1] * 4, 1024 * 1024);
  return {
    name: basename(dir),
    dir,
    nativeSize,
    maxPixels,
    scalingFactor: vae.scalingFactor,
    shiftFactor: vae.shiftFactor,
    hasVaeEncoder: await exists(join(dir, 'vae_encoder/model.onnx')),
  };
}

async function hashFolder(dir: string): Promise<string> {
  const hash = createHash('sha256');
  const files: string[] = [];
  async function walk(rel: string): Promise<void> {
    const entries = await readdir(join(dir, rel), { withFileTypes: true });
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(r);
      else if (/\.(json|txt|onnx|onnx_data|pb)$/.test(e.name) || e.name.endsWith('_data')) files.push(r);
    }
  }
  await walk('');
  for (const f of files) {
    hash.update(`${f}\0${(await stat(join(dir, f))).size}\0`);
    await new Promise<void>((resolve, reject) => {
      createReadStream(join(dir, f))
        .on('data', (chunk) => hash.update(chunk))
        .on('end', () => resolve())
        .on('error', reject);
    });
  }
  return hash.digest('hex');
}

function channelsOf(info: ValueInfo | undefined, fallback: number): number {
  const c = info?.shape[1];
  return typeof c === 'number' && c > 0 ? c : fallback;
}

/**
 * Open every session of a model folder.
 * @throws Error naming the folder and the missing/broken part.
 */
export async function loadDiffusionModel(dir: string, sessionOptions: SessionOptions = {}, known: KnownModelFacts = {}): Promise<DiffusionModel> {
  const info = await readModelInfo(dir);
  if (known.name) info.name = known.name;
  const schedulerConfig = await readJson(join(dir, 'scheduler/scheduler_config.json'));
  if (!schedulerConfig) throw new Error(`${dir}: scheduler/scheduler_config.json is missing`);
  const schedule = modelScheduleFromConfig(schedulerConfig);
  const tokenizer = await loadClipTokenizer(join(dir, 'tokenizer'));
  const open = known.openNetwork ?? ((network: string) => OnnxModel.open(join(dir, network, 'model.onnx'), sessionOptions));
  const [textEncoder, unet, vaeDecoder] = await Promise.all([open('text_encoder'), open('unet'), open('vae_decoder')]);
  const vaeEncoder = info.hasVaeEncoder ? await open('vae_encoder') : undefined;
  const widthOf = (enc: OnnxModel) => {
    const hidden = enc.findOutput('last_hidden_state') ?? enc.outputs[0];
    return typeof hidden?.shape[2] === 'number' ? (hidden.shape[2] as number) : 768;
  };
  let hiddenSize = widthOf(textEncoder);
  let sdxl: SdxlConditioning | undefined;
  const index = await readJson(join(dir, 'model_index.json'));
  const facts = index?.sdxl as Omit<SdxlConditioning, 'textEncoder2' | 'tokenizer2' | 'encoderWidths'> | undefined;
  if (facts) {
    sdxl = { kind: facts.kind, pooledDim: facts.pooledDim, timeIdCount: facts.timeIdCount, forceZerosForEmptyPrompt: facts.forceZerosForEmptyPrompt, encoderWidths: [hiddenSize] };
    if (facts.kind === 'base') {
      sdxl.textEncoder2 = await open('text_encoder_2');
      sdxl.tokenizer2 = await loadClipTokenizer(join(dir, 'tokenizer_2'));
      sdxl.encoderWidths.push(widthOf(sdxl.textEncoder2));
    }
    hiddenSize = sdxl.encoderWidths.reduce((a, b) => a + b, 0);
  }
  const unetInChannels = channelsOf(unet.findInput('sample') ?? unet.inputs[0], 4);
  const latentChannels = channelsOf(vaeDecoder.findInput('latent_sample') ?? vaeDecoder.inputs[0], 4);
  return {
    ...info,
    schedule,
    tokenizer,
    textEncoder,
    unet,
    vaeDecoder,
    vaeEncoder,
    unetInChannels,
    latentChannels,
    hiddenSize,
    ...(sdxl ? { sdxl } : {}),
    contentHash: known.contentHash ?? (await hashFolder(dir)),
    finalLayerNorm: known.finalLayerNorm,
    builtByEngine: known.builtByEngine,
    async release() {
      await Promise.all([textEncoder.release(), unet.release(), vaeDecoder.release(), vaeEncoder?.release(), sdxl?.textEncoder2?.release()]);
    },
  };
}
