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
 * | `flux` | `double_blocks.` / `single_blocks.` (maybe under `model.diffusion_model.`) | … | … |
 * | `sd3` | `joint_blocks.` (maybe under `model.diffusion_model.`) | … | … |
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
  /** True when the file holds only the denoiser. */
  unetOnly: boolean;
}

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
  if (fluxPrefix !== undefined) return { family: 'flux', unetPrefix: fluxPrefix, vaePrefix, textEncoders: [], unetOnly: !vaePrefix };
  const sd3Prefix = prefixOf(keys, ['model.diffusion_model.', ''], 'joint_blocks.0.');
  if (sd3Prefix !== undefined) return { family: 'sd3', unetPrefix: sd3Prefix, vaePrefix, textEncoders: [], unetOnly: !vaePrefix };

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
