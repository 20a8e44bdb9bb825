/**
 * What a folder of MODELS_DIR holds, read from its files without opening any session:
 * - checkpoint: a diffusers/Optimum ONNX pipeline (model_index.json);
 * - vae: an ONNX VAE (vae_decoder/model.onnx without a UNet), a diffusers AutoencoderKL config, or a
 *   safetensors file whose tensors are `encoder.*` / `decoder.*`;
 * - lora: safetensors whose tensor names carry LoRA factors (`lora_up`/`lora_down`, `lora_A`/`lora_B`,
 *   kohya's `lora_unet_*` / `lora_te_*`), no model_index.json;
 * - textualinversion: safetensors with `emb_params` / `string_to_param` / SDXL's `clip_l`+`clip_g` tensors,
 *   or a lone A1111 embedding file (*.pt, *.bin).
 * A folder that is none of these, or whose files cannot be read, is reported with an error.
 */
import { open, readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readModelInfo, type ModelInfo } from './diffusion-model';
import type { CheckpointFacts } from './checkpoint-inspection';

/** The kinds GET /v1/models reports (docs/architecture.md; the post-processing kinds: postprocess/). */
export type ModelKind = 'checkpoint' | 'lora' | 'vae' | 'textualinversion' | 'matting' | 'facerestore' | 'upscaler';
/** What a checkpoint can do. */
export type ModelCapability = 'txt2img' | 'img2img' | 'inpaint';

/** Facts about one model folder. */
export interface ModelFolder {
  name: string;
  dir: string;
  kind: ModelKind;
  /** Empty for anything but a checkpoint (a LoRA or VAE does not run on its own). */
  capabilities: ModelCapability[];
  /** Checkpoint facts (native size, VAE encoder, ...), when the folder is a readable checkpoint. */
  info?: ModelInfo;
  /** Bytes of the folder's ONNX files (graphs and external data): the load footprint estimate. */
  footprintBytes: number;
  /** Why the folder cannot be used, when it cannot. */
  error?: string;
  /** Set for checkpoints the checkpoint engine builds (single files, diffusers folders with safetensors). */
  checkpoint?: CheckpointFacts;
}

const ONNX_FILE = /\.(onnx|onnx_data|onnx\.data|pb)$|_data$/;

/** Every file under `dir`, relative, '/'-separated, with its size. */
async function listFiles(dir: string): Promise<Array<{ path: string; size: number }>> {
  const out: Array<{ path: string; size: number }> = [];
  async function walk(rel: string): Promise<void> {
    for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(r);
      else if (e.isFile()) out.push({ path: r, size: (await stat(join(dir, r))).size });
    }
  }
  await walk('');
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

/**
 * Tensor names in a safetensors file's header (8-byte little-endian length, then JSON).
 * @throws Error when the header is not valid safetensors.
 */
export async function safetensorsTensorNames(path: string): Promise<string[]> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(8);
    await fh.read(head, 0, 8, 0);
    const len = Number(head.readBigUInt64LE(0));
    const { size } = await fh.stat();
    if (len <= 1 || len > 100 * 1024 * 1024 || 8 + len > size) throw new Error(`${path}: not a safetensors file (header length ${len})`);
    const json = Buffer.alloc(len);
    await fh.read(json, 0, len, 8);
    const header = JSON.parse(json.toString('utf8')) as Record<string, unknown>;
    return Object.keys(header).filter((k) => k !== '__metadata__');
  } finally {
    await fh.close();
  }
}

const LORA_TENSOR = /(^|[._])lora([._]|$)|lora_(up|down|A|B)\b|^lora_(unet|te\d?)_/i;
const EMBEDDING_TENSOR = /^(emb_params|string_to_param(\.\*)?|clip_[lg])$/;
const VAE_TENSOR = /^(first_stage_model\.)?(encoder|decoder|quant_conv|post_quant_conv)\./;

async function classifySafetensors(path: string): Promise<ModelKind | undefined> {
  const names = await safetensorsTensorNames(path);
  if (names.some((n) => LORA_TENSOR.test(n))) return 'lora';
  if (names.length > 0 && names.every((n) => EMBEDDING_TENSOR.test(n))) return 'textualinversion';
  if (names.length > 0 && names.every((n) => VAE_TENSOR.test(n))) return 'vae';
  return undefined;
}

async function readJson(path: string): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Whether a checkpoint's UNet is an inpainting UNet (9 input channels), from its configs. */
async function isInpaintingCheckpoint(dir: string): Promise<boolean> {
  const index = await readJson(join(dir, 'model_index.json'));
  if (typeof index?._class_name === 'string' && /inpaint/i.test(index._class_name)) return true;
  const unet = await readJson(join(dir, 'unet/config.json'));
  return unet?.in_channels === 9;
}

/**
 * The one checkpoint file a top-level folder holds, as an `hf.co` download of a GGUF or single-file safetensors
 * repository leaves it (MODELS_DIR/<org>--<repo>…/<file>, hf-download.ts): no model_index.json, exactly one
 * `.gguf` file at its top, or else exactly one top-level `.safetensors` file that is no LoRA, embedding or VAE.
 * A `<stem>.json` sidecar beside it is read as for files under MODELS_DIR/checkpoints. Undefined otherwise.
 * @param dir absolute path of the folder.
 */
export async function singleCheckpointFile(dir: string): Promise<{ path: string; format: 'gguf' | 'safetensors' } | undefined> {
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name);
  } catch {
    return undefined;
  }
  if (names.includes('model_index.json')) return undefined;
  const ggufs = names.filter((n) => n.toLowerCase().endsWith('.gguf'));
  if (ggufs.length === 1) return { path: join(dir, ggufs[0]), format: 'gguf' };
  if (ggufs.length > 1) return undefined;
  const singles = names.filter((n) => n.toLowerCase().endsWith('.safetensors'));
  if (singles.length !== 1) return undefined;
  const path = join(dir, singles[0]);
  try {
    if ((await classifySafetensors(path)) !== undefined) return undefined;
  } catch {
    // Not valid safetensors: the checkpoint engine reports why.
  }
  return { path, format: 'safetensors' };
}

/**
 * Inspect a model folder. Never throws: problems are returned in `error`.
 * @param dir absolute path of the folder; its base name is the model's id.
 */
export async function inspectModelFolder(name: string, dir: string): Promise<ModelFolder> {
  let files: Array<{ path: string; size: number }>;
  try {
    files = await listFiles(dir);
  } catch (err) {
    return { name, dir, kind: 'checkpoint', capabilities: [], footprintBytes: 0, error: `cannot read the folder: ${(err as Error).message}` };
  }
  const footprintBytes = files.filter((f) => ONNX_FILE.test(f.path)).reduce((n, f) => n + f.size, 0);
  const has = (p: string) => files.some((f) => f.path === p);
  const base = { name, dir, footprintBytes };

  if (has('model_index.json')) {
    try {
      const info = await readModelInfo(dir);
      const missing = ['unet/model.onnx', 'text_encoder/model.onnx', 'vae_decoder/model.onnx'].filter((p) => !has(p));
      if (missing.length) return { ...base, kind: 'checkpoint', capabilities: [], info, error: `missing ${missing.join(', ')}` };
      const capabilities: ModelCapability[] = (await isInpaintingCheckpoint(dir))
        ? info.hasVaeEncoder
          ? ['inpaint']
          : []
        : info.hasVaeEncoder
          ? ['txt2img', 'img2img', 'inpaint']
          : ['txt2img'];
      return { ...base, kind: 'checkpoint', capabilities, info };
    } catch (err) {
      return { ...base, kind: 'checkpoint', capabilities: [], error: (err as Error).message };
    }
  }

  if (has('vae_decoder/model.onnx') && !has('unet/model.onnx')) return { ...base, kind: 'vae', capabilities: [] };
  const config = has('config.json') ? await readJson(join(dir, 'config.json')) : undefined;
  if (config?._class_name === 'AutoencoderKL') return { ...base, kind: 'vae', capabilities: [] };

  const tensors = files.filter((f) => f.path.endsWith('.safetensors'));
  const kinds = new Set<ModelKind>();
  for (const f of tensors) {
    try {
      const kind = await classifySafetensors(join(dir, f.path));
      if (kind) kinds.add(kind);
    } catch (err) {
      return { ...base, kind: /lora/i.test(f.path) ? 'lora' : 'checkpoint', capabilities: [], error: (err as Error).message };
    }
  }
  for (const kind of ['lora', 'textualinversion', 'vae'] as const) if (kinds.has(kind)) return { ...base, kind, capabilities: [] };
  if (tensors.length === 0 && files.some((f) => /\.(pt|bin)$/.test(f.path))) {
    return { ...base, kind: files.some((f) => /lora/i.test(f.path)) ? 'lora' : 'textualinversion', capabilities: [] };
  }
  return {
    ...base,
    kind: 'checkpoint',
    capabilities: [],
    error: 'not a model folder: no model_index.json (diffusers ONNX checkpoint), ONNX VAE, LoRA or embedding files',
  };
}
