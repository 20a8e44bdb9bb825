/**
 * Opens a checkpoint — an A1111/ComfyUI single file, a GGUF file, or a diffusers folder with safetensors weights —
 * into its networks' weights under canonical names (WeightSet), with the configs that came with it:
 * - single file (`.safetensors`, or `.gguf` as stable-diffusion.cpp writes whole models with the same LDM keys):
 *   the family and prefixes from the keys (detect/family.ts), configs from its sidecar; FLUX.1 / SD 3.x files may
 *   carry their CLIP and T5 encoders under `text_encoders.` (Stability's SD 3.5 files, ComfyUI's all-in-one saves);
 * - UNet / transformer-only files (ComfyUI-GGUF / city96, stable-diffusion.cpp `--diffusion-model` files, UNet-only
 *   safetensors) open the same way with `unetOnly`: their text encoders and VAE come from the sidecar's `base`;
 * - diffusers folder: `model_index.json`, each component's `config.json` and weights (`*.safetensors`,
 *   an `.fp16` variant, or shards listed in `*.safetensors.index.json`, read as one file), keys renamed to the canonical names
 *   by key-maps/.
 * Pickle weights (`.ckpt`, `.pt`, `.pth`, `.bin`) are never opened: unpickling runs code from the file.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { openGguf, type GgufFile } from '../weights/gguf';
import { openSafetensors } from '../weights/safetensors';
import { openShardedSafetensors } from '../weights/sharded-safetensors';
import type { TensorFile } from '../weights/tensor-file';
import { identityWeight, WeightSet } from '../weights/weight-set';
import { detectFamily, type FamilyLayout, type ModelFamily, type TextEncoderLocation } from './detect/family';
import { diffusersUnetKeyMap } from './key-maps/diffusers-unet';
import { diffusersVaeKeyMap, ldmVaeShape } from './key-maps/diffusers-vae';
import { t5EncoderKeyMap } from './key-maps/t5-encoder';
import { readSidecar, type ComponentConfigs, type Sidecar } from './sidecar';
import { openFlowDiffusersFolder } from './open-flow-folder';

/** Extensions of pickle-based weight formats, refused everywhere. */
export const PICKLE_EXTENSIONS = ['.ckpt', '.pt', '.pth', '.bin', '.pkl'];

/** The message for a pickle file: never unpickled, convert it. */
export function pickleRefusal(file: string): string {
  return `${basename(file)} is a pickle file (${PICKLE_EXTENSIONS.join(', ')}); pickle files are never loaded because unpickling can run code from the file. Convert it to .safetensors (e.g. with the safetensors "convert" tool) and use that instead`;
}

/** A text encoder's weights, where they came from and which layout they use. */
export interface TextEncoderWeights extends TextEncoderLocation {
  weights: WeightSet;
  /** diffusers `text_encoder/config.json` (or `text_encoder_2/…`) (transformers CLIPTextConfig), when the folder has one. */
  config?: Record<string, unknown>;
}

/** What a weights file's own metadata says about it (GGUF key/values), for listings. */
export interface CheckpointMetadata {
  /** `general.architecture` (`sd1`, `flux`, …), when the file names one (stable-diffusion.cpp writes none). */
  architecture?: string;
  /** The ggml type most quantized tensors are stored in (`Q8_0`, `Q4_K`, …); absent when none is quantized. */
  quantization?: string;
  /** Number of tensors per stored type, e.g. `{F16: 183, Q8_0: 121}`. */
  tensorTypes: Record<string, number>;
}

/** An opened checkpoint. */
export interface CheckpointParts {
  kind: 'single-file' | 'diffusers';
  /** The file or folder. */
  path: string;
  family: ModelFamily;
  unet: WeightSet;
  vae?: WeightSet;
  textEncoders: TextEncoderWeights[];
  /** Configs from the sidecar (single file) or the folder's config files (diffusers). */
  configs: ComponentConfigs;
  /** Files whose bytes define the model (hashed for the cache key and the receipt), in a fixed order. */
  contentFiles: string[];
  /** Sidecar bytes (part of the cache key), when there is a sidecar. */
  sidecarBytes?: Uint8Array;
  /** True when the denoiser is all the file holds (its text encoders and VAE come from `configs.base`). */
  unetOnly: boolean;
  /** The file's own metadata (GGUF files). */
  metadata?: CheckpointMetadata;
  /** Flow transformer pipelines (FLUX.1, SD 3.x): the T5 encoder's weights (canonical `T5EncoderModel` names) and its config. */
  t5?: { weights: WeightSet; config?: Record<string, unknown> };
  /**
   * Tokenizer folders that came with the model (diffusers `tokenizer/`, `tokenizer_2/`, `tokenizer_3/` of flow
   * pipelines): `clip` (CLIP-L BPE, may lack vocab.json / merges.txt), `t5` (a `tokenizer.json`).
   */
  tokenizerDirs?: { clip?: string; t5?: string };
  /** Close every opened file. */
  close(): Promise<void>;
}

/** A checkpoint that cannot be opened as a model; listed as broken with this reason. */
export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

/**
 * Open a single-file `.safetensors` checkpoint.
 * @throws CheckpointError / WeightsFileError / UnknownArchitectureError / SidecarError with the reason.
 */
export async function openSingleFile(path: string): Promise<CheckpointParts> {
  const sidecar = await readSidecar(path);
  return partsOfSingleFile(await openSafetensors(path), sidecar);
}

/**
 * Open a GGUF checkpoint: a whole model in stable-diffusion.cpp's layout (LDM keys with `model.diffusion_model.`,
 * `first_stage_model.`, `cond_stage_model.` prefixes, opened exactly like a single file), or a UNet / transformer
 * alone (stable-diffusion.cpp's prefixed UNet, ComfyUI-GGUF / city96's prefix-less UNet or BFL FLUX keys), opened
 * with `unetOnly`. Quantized tensors are dequantized to float32 when the graph builders read them. The file's
 * `general.architecture` and tensor types come back in `metadata`.
 * @throws WeightsFileError (an invalid or undecodable GGUF file) / UnknownArchitectureError / SidecarError.
 */
export async function openGgufCheckpoint(path: string): Promise<CheckpointParts> {
  const sidecar = await readSidecar(path);
  const file = await openGguf(path);
  const parts = await partsOfSingleFile(file, sidecar);
  return { ...parts, metadata: ggufMetadata(file) };
}

function ggufMetadata(file: GgufFile): CheckpointMetadata {
  const tensorTypes: Record<string, number> = {};
  const quantized = new Map<string, number>();
  for (const e of file.entries.values()) {
    tensorTypes[e.dtype] = (tensorTypes[e.dtype] ?? 0) + 1;
    if (e.ggmlType.quantized) quantized.set(e.dtype, (quantized.get(e.dtype) ?? 0) + 1);
  }
  const quantization = [...quantized.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
  const architecture = file.values.get('general.architecture')?.type === 'string' ? file.metadata['general.architecture'] : undefined;
  return { ...(architecture ? { architecture } : {}), ...(quantization ? { quantization } : {}), tensorTypes };
}

/** A single opened weights file's networks by the family detected from its keys; closes the file on failure. */
async function partsOfSingleFile(file: TensorFile, sidecar: Sidecar | undefined): Promise<CheckpointParts> {
  const path = file.path;
  try {
    const layout: FamilyLayout = detectFamily(file.entries.keys(), (k) => file.entries.get(k)?.shape);
    const unet = WeightSet.fromFile(file, layout.unetPrefix, `${basename(path)} (UNet)`);
    const vae = layout.vaePrefix !== undefined ? WeightSet.fromFile(file, layout.vaePrefix, `${basename(path)} (VAE)`) : undefined;
    const textEncoders = layout.textEncoders.map((t) => ({ ...t, weights: flowClipWeights(layout.family, t.role, WeightSet.fromFile(file, t.prefix, `${basename(path)} (${t.role} text encoder)`), file, t.prefix) }));
    const t5 =
      layout.t5Prefix !== undefined
        ? { weights: WeightSet.mapped(file, t5EncoderKeyMap([...file.entries.keys()], layout.t5Prefix), `${basename(path)} (T5 text encoder, ${layout.t5Prefix}*)`) }
        : undefined;
    return {
      kind: 'single-file',
      path,
      family: layout.family,
      unet,
      vae,
      textEncoders,
      configs: sidecar?.configs ?? {},
      contentFiles: [path],
      sidecarBytes: sidecar?.bytes,
      unetOnly: layout.unetOnly,
      ...(t5 ? { t5 } : {}),
      close: () => file.close(),
    };
  } catch (err) {
    await file.close();
    throw err;
  }
}

/**
 * A flow-family single file's CLIP weights as upstream reads them (other families' unchanged): SD 3.x's CLIP-L pooled
 * output is not projected — diffusers puts `torch.eye` in `text_projection.weight` whatever the file stores, ComfyUI's
 * SD3 CLIP-L returns the pooled output unprojected — so `text_projection.weight` is the identity of the hidden width
 * (`text_model.final_layer_norm.weight`'s length; absent that tensor, detection reports it missing); FLUX.1 reads
 * CLIP-L's pooled output without projection (diffusers `CLIPTextModel`), so a stored `text_projection` is left out.
 */
function flowClipWeights(family: ModelFamily, role: TextEncoderLocation['role'], weights: WeightSet, file: TensorFile, prefix: string): WeightSet {
  if (role !== 'clip_l' || (family !== 'sd3' && family !== 'flux')) return weights;
  const stored = weights.names().filter((n) => n.startsWith('text_projection.'));
  if (family === 'flux') return weights.without(stored);
  const norm = 'text_model.final_layer_norm.weight';
  if (!weights.has(norm)) return weights.without(stored);
  const width = weights.shape(norm)[0];
  return weights.without(stored).with(new Map([['text_projection.weight', identityWeight(file, `${prefix}text_projection.weight`, width)]]));
}

export async function readJson(path: string): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CheckpointError(`${path}: ${(err as Error).message}`);
  }
}

/** One diffusers component's weights as one weights source, and the files whose bytes define them. */
export interface ComponentWeights {
  /** A single file, or the shards of an index presented as one (weights/sharded-safetensors.ts). */
  file: TensorFile;
  /** The weights file, or the index followed by its shards (hashed for the cache key and the receipt). */
  contentFiles: string[];
}

/**
 * Open the weights of one diffusers component: `<stem>.safetensors`, else `<stem>.fp16.safetensors`, else the shards
 * of `<stem>.safetensors.index.json` (or its `.fp16` spellings), checked against their index and read as one file.
 * @throws CheckpointError when the folder is missing or has only pickle weights or none; WeightsFileError (naming the
 *         file and the rule) for an invalid file, a missing shard or an index that misplaces a tensor.
 */
export async function openComponentWeights(dir: string, stem: string): Promise<ComponentWeights> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    throw new CheckpointError(`${dir} is missing`);
  }
  for (const candidate of [`${stem}.safetensors`, `${stem}.fp16.safetensors`]) {
    if (names.includes(candidate)) return { file: await openSafetensors(join(dir, candidate)), contentFiles: [join(dir, candidate)] };
  }
  for (const index of [`${stem}.safetensors.index.json`, `${stem}.safetensors.index.fp16.json`, `${stem}.fp16.safetensors.index.json`]) {
    if (!names.includes(index)) continue;
    const file = await openShardedSafetensors(join(dir, index));
    return { file, contentFiles: [join(dir, index), ...file.shardPaths] };
  }
  const pickle = names.find((n) => PICKLE_EXTENSIONS.some((e) => n.endsWith(e)));
  if (pickle) throw new CheckpointError(pickleRefusal(join(dir, pickle)));
  throw new CheckpointError(`${dir} has no ${stem}.safetensors`);
}

/**
 * Open a diffusers folder whose weights are safetensors.
 * @throws CheckpointError naming the missing or unusable part.
 */
export async function openDiffusersFolder(dir: string): Promise<CheckpointParts> {
  const index = await readJson(join(dir, 'model_index.json'));
  if (!index) throw new CheckpointError(`${dir}: model_index.json is missing`);
  const opened: TensorFile[] = [];
  const close = async () => {
    await Promise.all(opened.map((f) => f.close()));
  };
  try {
    const open = async (componentDir: string, stem: string) => {
      const c = await openComponentWeights(componentDir, stem);
      opened.push(c.file);
      contentFiles.push(...c.contentFiles);
      return c.file;
    };
    const contentFiles: string[] = [];
    const component = (name: string) => (index[name] && Array.isArray(index[name]) && (index[name] as unknown[])[0] !== null ? name : undefined);
    const configs: ComponentConfigs = { model_index: index };

    const unetName = component('unet');
    if (!unetName && component('transformer')) {
      const flow = await openFlowDiffusersFolder(dir, index, open);
      return { ...flow, contentFiles, close };
    }
    if (!unetName) throw new CheckpointError(`${dir}: model_index.json names no unet or transformer`);
    const unetFile = await open(join(dir, 'unet'), 'diffusion_pytorch_model');
    const unet = WeightSet.mapped(unetFile, diffusersUnetKeyMap([...unetFile.entries.keys()]), `${basename(dir)}/unet`);
    configs.unet = await readJson(join(dir, 'unet', 'config.json'));

    let vae: WeightSet | undefined;
    if (component('vae')) {
      const vaeFile = await open(join(dir, 'vae'), 'diffusion_pytorch_model');
      vae = WeightSet.mapped(vaeFile, diffusersVaeKeyMap([...vaeFile.entries.keys()]), `${basename(dir)}/vae`, ldmVaeShape);
      configs.vae = await readJson(join(dir, 'vae', 'config.json'));
    }

    const textEncoders: TextEncoderWeights[] = [];
    for (const name of ['text_encoder', 'text_encoder_2'] as const) {
      if (!component(name)) continue;
      const f = await open(join(dir, name), 'model');
      // transformers ≥ 5.6 may save CLIPTextModel without the `text_model.` wrapper: add it back.
      const flat = ![...f.entries.keys()].some((k) => k.startsWith('text_model.'));
      const weights = WeightSet.mapped(f, (k) => (flat && !k.startsWith('text_projection') ? `text_model.${k}` : k), `${basename(dir)}/${name}`);
      const config = await readJson(join(dir, name, 'config.json'));
      configs[name] = config;
      textEncoders.push({ prefix: '', layout: 'transformers', role: name === 'text_encoder_2' ? 'clip_g' : 'clip_l', weights, config });
    }
    configs.scheduler = await readJson(join(dir, 'scheduler', 'scheduler_config.json'));

    const family = diffusersFamily(index, configs, textEncoders);
    if (family === 'sd2') textEncoders.forEach((t) => (t.role = 'clip_h'));
    if (family === 'sdxl-refiner') textEncoders.forEach((t) => (t.role = 'clip_g'));
    return { kind: 'diffusers', path: dir, family, unet, vae, textEncoders, configs, contentFiles, unetOnly: !vae && textEncoders.length === 0, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * The family of a diffusers pipeline folder: SDXL by its pipeline class (base with two encoders, refiner with
 * only `text_encoder_2`); SD 2.x by its OpenCLIP-derived text encoder (exact gelu, or 1024-wide hidden states);
 * SD 1.x otherwise.
 */
function diffusersFamily(index: Record<string, unknown>, configs: ComponentConfigs, encoders: TextEncoderWeights[]): ModelFamily {
  const cls = typeof index._class_name === 'string' ? index._class_name : '';
  if (/StableDiffusionXL/.test(cls)) return encoders.some((e) => e.role === 'clip_l') ? 'sdxl' : 'sdxl-refiner';
  const te = configs.text_encoder;
  if (te && (te.hidden_act === 'gelu' || te.hidden_size === 1024)) return 'sd2';
  if (configs.unet?.cross_attention_dim === 1024) return 'sd2';
  return 'sd1';
}

/** Whether `dir` is a diffusers folder whose UNet weights are safetensors (not an ONNX export). */
export async function isSafetensorsDiffusersFolder(dir: string): Promise<boolean> {
  try {
    if (!(await stat(join(dir, 'model_index.json'))).isFile()) return false;
    const unet = await readdir(join(dir, 'unet'));
    return !unet.includes('model.onnx') && unet.some((n) => n.endsWith('.safetensors') || n.endsWith('.safetensors.index.json') || PICKLE_EXTENSIONS.some((e) => n.endsWith(e)));
  } catch {
    return false;
  }
}
