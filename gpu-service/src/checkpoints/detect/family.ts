/**
 * Which model family a single-file checkpoint holds, and where each network's tensors are, read from the
 * key prefixes alone (the way ComfyUI's `model_detection` and stable-diffusion.cpp's `get_sd_version`
 * recognise a file): no tensor data is read.
 *
 * | family | UNet / transformer | VAE | text encoders |
 * |---|---|---|---|
 * | `sd1` | `model.diffusion_model.` (LDM UNet) | `first_stage_model.` | `cond_stage_model.transformer.` (CLIP ViT-L, transformers layout) |
 * | `sd2` | same | same | `cond_stage_model.model.` (OpenCLIP ViT-H) |
 * | `sdxl` | same, with `label_emb` | same | `conditioner.embedders.0.transformer.` (CLIP-L) + `conditioner.embedders.1.model.` (OpenCLIP bigG) |
 * | `sdxl-refiner` | same, with `label_emb` | same | `conditioner.embedders.0.model.` (OpenCLIP bigG) |
 * | `flux` | `double_blocks.` / `single_blocks.` (maybe under `model.diffusion_model.`) | `vae.` (ComfyUI) or `first_stage_model.` | `text_encoders.clip_l.transformer.` (CLIP-L, transformers layout) + `text_encoders.t5xxl.transformer.` (T5) |
 * | `sd3` | `joint_blocks.` (maybe under `model.diffusion_model.`) | `first_stage_model.` (or `vae.`) | `text_encoders.clip_l.transformer.`, `text_encoders.clip_g.transformer.` (transformers layout) + `text_encoders.t5xxl.transformer.` |
 *
 * The flow families' text-encoder prefixes are ComfyUI's (`supported_models.py`: `text_encoder_key_prefix`
 * `text_encoders.`, CLIP found by `clip_l.transformer.text_model.…`, T5 by `t5xxl.transformer.`), which Stability's
 * `sd3.5_large.safetensors` / `sd3_medium_incl_clips*.safetensors` and ComfyUI's all-in-one FLUX saves use, and
 * diffusers' `single_file_utils.py` reads (`text_encoders.clip_l.transformer.`, `…clip_g.transformer.`,
 * `…t5xxl.transformer.`); each may be absent (the sidecar's `base` then supplies it).
 *
 * A file with only a UNet (no VAE, no text encoder) is reported with `unetOnly`, so a sidecar can name the
 * model that supplies the rest.
 */

/** The families the engine knows. */
export type ModelFamily = 'sd1' | 'sd2' | 'sdxl' | 'sdxl-refiner' | 'flux' | 'sd3';

/** Human-readable family names for listings and errors. */
export const FAMILY_NAMES: Readonly<Record<ModelFamily, string>> = {
  sd1: 'Stable Diffusion 1.x',
  sd2: 'Stable Diffusion 2.x',
  sdxl: 'Stable Diffusion XL',
  'sdxl-refiner': 'Stable Diffusion XL refiner',
  flux: 'FLUX.1',
  sd3: 'Stable Diffusion 3.x',
};

/** Where a text encoder's tensors are and which key layout they use. */
export interface TextEncoderLocation {
  /** Prefix to strip (the canonical names start after it). */
  prefix: string;
  /** `transformers`: HF CLIPTextModel names (`text_model.…`); `openclip`: OpenCLIP names (`transformer.resblocks.…`). */
  layout: 'transformers' | 'open_clip';
  /** The encoder's role in its family (CLIP ViT-L, OpenCLIP ViT-H, OpenCLIP ViT-bigG). */
  role: 'clip_l' | 'clip_h' | 'clip_g';
}

/** The layout of one single-file checkpoint. */
export interface FamilyLayout {
  family: ModelFamily;
  /** Prefix of the denoiser's tensors ('' when they are at the top level). */
  unetPrefix: string;
  /** Prefix of the VAE's tensors, when the file has a VAE. */
  vaePrefix?: string;
  textEncoders: TextEncoderLocation[];
  /** Flow families: prefix of the T5 encoder's tensors (`text_encoders.t5xxl.transformer.`), when the file has one. */
  t5Prefix?: string;
  /** True when the file holds only the denoiser. */
  unetOnly: boolean;
}

/** Prefix of the text encoders inside flow-family single files (ComfyUI's `text_encoder_key_prefix`). */
export const FLOW_TEXT_ENCODERS_PREFIX = 'text_encoders.';

/** The flow-family encoder sub-prefixes under `text_encoders.` and which family reads each. */
const FLOW_ENCODERS: ReadonlyArray<{ prefix: string; role: 'clip_l' | 'clip_g' | 't5'; families: ReadonlyArray<'flux' | 'sd3'> }> = [
  { prefix: 'text_encoders.clip_l.transformer.', role: 'clip_l', families: ['flux', 'sd3'] },
  { prefix: 'text_encoders.clip_g.transformer.', role: 'clip_g', families: ['sd3'] },
  { prefix: 'text_encoders.t5xxl.transformer.', role: 't5', families: ['flux', 'sd3'] },
];

/** A file whose keys match no family the engine knows; the message says what was found. */
export class UnknownArchitectureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnknownArchitectureError';
  }
}

/** The first prefix under which any key starts with `probe` ('' = top level), or undefined. */
function prefixOf(keys: ReadonlySet<string> | readonly string[], candidates: readonly string[], probe: string): string | undefined {
  for (const prefix of candidates) {
    for (const k of keys) if (k.startsWith(prefix + probe)) return prefix;
  }
  return undefined;
}

/**
 * Detect the family and the networks' prefixes from a checkpoint's keys.
 * @throws UnknownArchitectureError naming what the keys look like when no family matches (e.g. a LoRA, a
 *         standalone VAE or text encoder, or an architecture the engine does not build).
 */
export function detectFamily(keyList: Iterable<string>, shapeOf: (key: string) => readonly number[] | undefined = () => undefined): FamilyLayout {
  const keys = [...keyList];
  const has = (prefix: string) => keys.some((k) => k.startsWith(prefix));
  const vaePrefix = has('first_stage_model.encoder.') || has('first_stage_model.decoder.') ? 'first_stage_model.' : has('vae.decoder.') ? 'vae.' : undefined;

  // Flow transformers first: their files may also carry a VAE and text encoders under other prefixes.
  const fluxPrefix = prefixOf(keys, ['model.diffusion_model.', ''], 'double_blocks.0.');
  if (fluxPrefix !== undefined) return flowLayout('flux', fluxPrefix, vaePrefix, keys);
  const sd3Prefix = prefixOf(keys, ['model.diffusion_model.', ''], 'joint_blocks.0.');
  if (sd3Prefix !== undefined) return flowLayout('sd3', sd3Prefix, vaePrefix, keys);

  const unetPrefix = prefixOf(keys, ['model.diffusion_model.', ''], 'input_blocks.0.0.weight');
  if (unetPrefix === undefined) {
    if (keys.some((k) => /lora_(up|down|A|B)\b|\.lora\./.test(k))) throw new UnknownArchitectureError('this is a LoRA (lora_up/lora_down tensors), not a checkpoint: put it in MODELS_DIR/loras');
    if (keys.length > 0 && keys.every((k) => /^(first_stage_model\.)?(encoder|decoder|quant_conv|post_quant_conv)\./.test(k))) {
      throw new UnknownArchitectureError('this is a standalone VAE (encoder.*/decoder.* tensors), not a checkpoint: put it in MODELS_DIR/vae');
    }
    const sample = keys.slice(0, 3).join(', ');
    throw new UnknownArchitectureError(`no known architecture: no UNet (input_blocks.*), FLUX (double_blocks.*) or SD3 (joint_blocks.*) tensors (first keys: ${sample || 'none'})`);
  }
  const hasAdm = has(`${unetPrefix}label_emb.`);
  const textEncoders: TextEncoderLocation[] = [];
  let family: ModelFamily;
  if (has('conditioner.embedders.')) {
    if (has('conditioner.embedders.0.transformer.') && has('conditioner.embedders.1.model.')) {
      family = 'sdxl';
      textEncoders.push({ prefix: 'conditioner.embedders.0.transformer.', layout: 'transformers', role: 'clip_l' });
      textEncoders.push({ prefix: 'conditioner.embedders.1.model.', layout: 'open_clip', role: 'clip_g' });
    } else if (has('conditioner.embedders.0.model.') && hasAdm) {
      family = 'sdxl-refiner';
      textEncoders.push({ prefix: 'conditioner.embedders.0.model.', layout: 'open_clip', role: 'clip_g' });
    } else if (has('conditioner.embedders.0.model.')) {
      // SD 2.x saved in the sgm (SDXL-era) layout.
      family = 'sd2';
      textEncoders.push({ prefix: 'conditioner.embedders.0.model.', layout: 'open_clip', role: 'clip_h' });
    } else {
      throw new UnknownArchitectureError('conditioner.embedders.* tensors in no known arrangement (expected SDXL base: embedders.0.transformer + embedders.1.model, or the refiner: embedders.0.model)');
    }
  } else if (has('cond_stage_model.model.')) {
    family = 'sd2';
    textEncoders.push({ prefix: 'cond_stage_model.model.', layout: 'open_clip', role: 'clip_h' });
  } else if (has('cond_stage_model.transformer.')) {
    family = 'sd1';
    textEncoders.push({ prefix: 'cond_stage_model.transformer.', layout: 'transformers', role: 'clip_l' });
  } else {
    // A UNet on its own: label_emb marks the SDXL family; otherwise SD 2.x's cross-attention reads OpenCLIP
    // ViT-H's 1024-wide states and SD 1.x's CLIP ViT-L's 768 (a sidecar's "base" model overrides this).
    const toK = keys.find((k) => k.startsWith(unetPrefix) && k.endsWith('.attn2.to_k.weight'));
    const context = toK ? shapeOf(toK)?.[1] : undefined;
    family = hasAdm ? 'sdxl' : context === 1024 ? 'sd2' : 'sd1';
  }
  return { family, unetPrefix, vaePrefix, textEncoders, unetOnly: !vaePrefix && textEncoders.length === 0 };
}

/**
 * A flow-family single file's layout: the transformer, the VAE and whichever of the family's encoders the file
 * carries under `text_encoders.` (FLOW_ENCODERS).
 * @throws UnknownArchitectureError for `text_encoders.*` tensors under no prefix the family reads (another
 *         encoder, a missing `.transformer.` level), naming the first of them.
 */
function flowLayout(family: 'flux' | 'sd3', unetPrefix: string, vaePrefix: string | undefined, keys: readonly string[]): FamilyLayout {
  const read = FLOW_ENCODERS.filter((e) => e.families.includes(family));
  const stray = keys.find((k) => k.startsWith(FLOW_TEXT_ENCODERS_PREFIX) && !read.some((e) => k.startsWith(e.prefix)) && !/^text_encoders\.clip_[lg]\.logit_scale$/.test(k));
  if (stray !== undefined) {
    throw new UnknownArchitectureError(
      `"${stray}" is under no text-encoder prefix a ${FAMILY_NAMES[family]} file has (${read.map((e) => `${e.prefix}*`).join(', ')})`,
    );
  }
  const present = read.filter((e) => keys.some((k) => k.startsWith(e.prefix)));
  const textEncoders: TextEncoderLocation[] = present.filter((e) => e.role !== 't5').map((e) => ({ prefix: e.prefix, layout: 'transformers', role: e.role as 'clip_l' | 'clip_g' }));
  const t5Prefix = present.find((e) => e.role === 't5')?.prefix;
  return { family, unetPrefix, vaePrefix, textEncoders, ...(t5Prefix ? { t5Prefix } : {}), unetOnly: !vaePrefix && present.length === 0 };
}
