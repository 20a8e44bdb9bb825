/**
 * AutoencoderKL (VAE) configuration detection from LDM-named tensors: what `ldm.models.autoencoder.AutoencoderKL`
 * (`Encoder` / `Decoder` in ldm/modules/diffusionmodules/model.py, the same classes in ComfyUI) was built with,
 * read from the shapes of the tensors that are there. Covers the VAEs of SD 1.x/2.x, SDXL (4 latent channels,
 * quant_conv / post_quant_conv) and the 16-channel VAEs of FLUX.1 and SD 3.5 (no quant convs).
 *
 * Canonical names (ENGINE.md): LDM keys without `first_stage_model.` — `encoder.conv_in`,
 * `encoder.down.{i}.block.{j}.{norm1,conv1,norm2,conv2,nin_shortcut}`, `encoder.down.{i}.attn.{j}`,
 * `encoder.down.{i}.downsample.conv`, `encoder.mid.{block_1,attn_1,block_2}`, `encoder.norm_out`,
 * `encoder.conv_out`, `quant_conv`, `post_quant_conv`, `decoder.conv_in`, `decoder.mid.*`,
 * `decoder.up.{i}.block.{j}` (j = 0..num_res_blocks), `decoder.up.{i}.attn.{j}`, `decoder.up.{i}.upsample.conv`,
 * `decoder.norm_out`, `decoder.conv_out`. `decoder.up.{i}` is numbered by resolution like the encoder (level 0
 * = full resolution), so `up.{L-1}` runs first.
 */
import { MissingWeightError, WeightShapeError, type WeightSet } from '../../weights/weight-set';

/** What the tensors cannot tell, in our own form; the integration layer fills it (diffusers config, yaml, family). */
export interface VaeHints {
  /** GroupNorm groups of every norm (LDM `Normalize`: 32; diffusers `norm_num_groups`). Default 32. */
  normGroups?: number;
  /** GroupNorm eps of every norm (LDM `Normalize` and diffusers AutoencoderKL: 1e-6). Default 1e-6. */
  eps?: number;
  /** Latent scaling factor (diffusers `scaling_factor`, LDM `scale_factor`): UNet latent = (z − shift)·scale. Default 0.18215. */
  scalingFactor?: number;
  /** Latent shift factor (diffusers `shift_factor`). Default 0. */
  shiftFactor?: number;
}

/** Defaults of the hints: LDM / diffusers AutoencoderKL, SD 1.x latent scaling. */
export const VAE_HINT_DEFAULTS: Required<VaeHints> = { normGroups: 32, eps: 1e-6, scalingFactor: 0.18215, shiftFactor: 0 };

/**
 * Latent scaling of the published VAE families (their diffusers `vae/config.json`: SD 1.x/2.x 0.18215, SDXL
 * 0.13025, SD 3.x 1.5305 / 0.0609, FLUX.1 0.3611 / 0.1159). Tensors cannot tell an SD 1.x VAE from an SDXL one,
 * so the integration layer picks the family and passes it as hints.
 */
export const VAE_FAMILY_SCALING = {
  sd1: { scalingFactor: 0.18215, shiftFactor: 0 },
  sd2: { scalingFactor: 0.18215, shiftFactor: 0 },
  sdxl: { scalingFactor: 0.13025, shiftFactor: 0 },
  sd3: { scalingFactor: 1.5305, shiftFactor: 0.0609 },
  flux: { scalingFactor: 0.3611, shiftFactor: 0.1159 },
} as const satisfies Record<string, Pick<VaeHints, 'scalingFactor' | 'shiftFactor'>>;

/** The encoder half (present when the weights hold `encoder.*`). */
export interface VaeEncoderConfig {
  /** Image channels read (LDM `in_channels`, 3). */
  inChannels: number;
  /** Levels whose res blocks are each followed by an attention block (`encoder.down.{i}.attn.{j}`; LDM attn_resolutions as level indices). */
  attentionLevels: number[];
  /** Whether the mid block has `mid.attn_1` (diffusers `mid_block_add_attention`). */
  midAttention: boolean;
  /** Whether `quant_conv` ([2·latent, 2·z, 1, 1]) follows the encoder (diffusers `use_quant_conv`). */
  quantConv: boolean;
}

/** The decoder half (present when the weights hold `decoder.*`). */
export interface VaeDecoderConfig {
  /** Image channels produced (LDM `out_ch`, 3). */
  outChannels: number;
  /** Levels whose res blocks are each followed by an attention block (`decoder.up.{i}.attn.{j}`). */
  attentionLevels: number[];
  /** Whether the mid block has `mid.attn_1`. */
  midAttention: boolean;
  /** Whether `post_quant_conv` ([z, latent, 1, 1]) precedes the decoder (diffusers `use_post_quant_conv`). */
  postQuantConv: boolean;
}

/** An LDM AutoencoderKL configuration (LDM ddconfig names in camelCase, diffusers names in the docs). */
export interface VaeConfig {
  /** LDM `ch`: width of level 0 (encoder.conv_in's outputs; without an encoder, the decoder's level-0 width, i.e. ch_mult[0] = 1 assumed). */
  ch: number;
  /** LDM `ch_mult`: level widths / ch, one per level (len = number of resolutions). */
  chMult: number[];
  /** Width of each level, ch·ch_mult[i] (diffusers `block_out_channels`). */
  blockOutChannels: number[];
  /** LDM `num_res_blocks` (diffusers `layers_per_block`): res blocks per encoder level; the decoder has one more per level. */
  numResBlocks: number;
  /** LDM `z_channels`: the encoder's conv_out gives 2·z (mean; logvar), decoder.conv_in reads z. */
  zChannels: number;
  /** Channels of the latent the pipeline sees (LDM `embed_dim` with quant convs, else z; diffusers `latent_channels`). */
  latentChannels: number;
  /** Spatial down-sampling factor, 2^(levels − 1) (8 for every SD/FLUX VAE). */
  downsampleFactor: number;
  encoder?: VaeEncoderConfig;
  decoder?: VaeDecoderConfig;
  /** GroupNorm groups (hint). */
  normGroups: number;
  /** GroupNorm eps (hint). */
  eps: number;
  /** Latent scaling factor (hint; the pipeline applies it, not the graphs). */
  scalingFactor: number;
  /** Latent shift factor (hint; the pipeline applies it). */
  shiftFactor: number;
}

/** The tensors do not form an LDM AutoencoderKL; the message says which tensors disagree and where. */
export class VaeConfigError extends Error {
  constructor(where: string, reason: string) {
    super(`${where}: not an LDM AutoencoderKL: ${reason}`);
    this.name = 'VaeConfigError';
  }
}

/**
 * Detect the VAE configuration of `w` (canonical LDM names, prefix already stripped).
 *
 * Read from tensors: levels (`encoder.down.*` / `decoder.up.*`), res blocks per level, level widths, z and latent
 * channels (encoder.conv_out [2z, C, 3, 3], quant_conv [2e, 2z, 1, 1], post_quant_conv [z, e, 1, 1], decoder.conv_in
 * [C, z, 3, 3]), image channels, attention placement, quant convs. Either half may be absent (a decoder-only
 * file gives `encoder: undefined`); when both are there they must agree.
 * @throws VaeConfigError when the tensors contradict each other or the hints (e.g. groups not dividing a width);
 *         MissingWeightError / WeightShapeError when a tensor the structure implies is absent or mis-shaped.
 */
export function detectVaeConfig(w: WeightSet, hints: VaeHints = {}): VaeConfig {
  const h = { ...VAE_HINT_DEFAULTS, ...definedOnly(hints) };
  const names = w.names();
  const hasEncoder = names.some((n) => n.startsWith('encoder.'));
  const hasDecoder = names.some((n) => n.startsWith('decoder.'));
  if (!hasEncoder && !hasDecoder) throw new VaeConfigError(w.where, 'no encoder.* or decoder.* tensors');

  const enc = hasEncoder ? detectEncoder(w) : undefined;
  const dec = hasDecoder ? detectDecoder(w) : undefined;
  if (enc && dec) {
    if (enc.widths.length !== dec.widths.length) {
      throw new VaeConfigError(w.where, `the encoder has ${enc.widths.length} levels (encoder.down.*), the decoder ${dec.widths.length} (decoder.up.*)`);
    }
    if (enc.widths.some((c, i) => c !== dec.widths[i])) {
      throw new VaeConfigError(w.where, `encoder level widths [${enc.widths.join(', ')}] differ from decoder level widths [${dec.widths.join(', ')}]`);
    }
    if (dec.resBlocks !== enc.resBlocks + 1) {
      throw new VaeConfigError(w.where, `encoder levels have ${enc.resBlocks} res blocks, so decoder levels need ${enc.resBlocks + 1}, but decoder.up.0 has ${dec.resBlocks}`);
    }
    if (enc.z !== dec.z) throw new VaeConfigError(w.where, `encoder.conv_out gives z = ${enc.z} channels (2z = ${2 * enc.z}), decoder.conv_in reads ${dec.z}`);
    if (enc.latent !== dec.latent) {
      throw new VaeConfigError(w.where, `the encoder gives ${enc.latent}-channel latents${enc.quantConv ? ' (quant_conv)' : ''}, the decoder reads ${dec.latent}${dec.postQuantConv ? ' (post_quant_conv)' : ''}`);
    }
  }
  const blockOutChannels = (enc ?? dec)!.widths;
  const numResBlocks = enc ? enc.resBlocks : dec!.resBlocks - 1;
  if (numResBlocks < 1) throw new VaeConfigError(w.where, `decoder levels need at least 2 res blocks, decoder.up.0 has ${dec!.resBlocks}`);
  const ch = enc ? enc.ch : blockOutChannels[0];
  const bad = blockOutChannels.find((c) => c % ch !== 0);
  if (bad !== undefined) throw new VaeConfigError(w.where, `level width ${bad} is not a multiple of ch = ${ch} (encoder.conv_in)`);

  if (!Number.isInteger(h.normGroups) || h.normGroups < 1) throw new VaeConfigError(w.where, `GroupNorm groups hint must be a positive integer, got ${h.normGroups}`);
  const widths = new Set([...blockOutChannels, ch]);
  for (const c of widths) {
    if (c % h.normGroups !== 0) throw new VaeConfigError(w.where, `GroupNorm groups ${h.normGroups} (hint) do not divide the width ${c}`);
  }
  if (!(h.eps > 0)) throw new VaeConfigError(w.where, `GroupNorm eps hint must be positive, got ${h.eps}`);

  return {
    ch,
    chMult: blockOutChannels.map((c) => c / ch),
    blockOutChannels,
    numResBlocks,
    zChannels: (enc ?? dec)!.z,
    latentChannels: (enc ?? dec)!.latent,
    downsampleFactor: 2 ** (blockOutChannels.length - 1),
    encoder: enc && { inChannels: enc.inChannels, attentionLevels: enc.attentionLevels, midAttention: enc.midAttention, quantConv: enc.quantConv },
    decoder: dec && { outChannels: dec.outChannels, attentionLevels: dec.attentionLevels, midAttention: dec.midAttention, postQuantConv: dec.postQuantConv },
    normGroups: h.normGroups,
    eps: h.eps,
    scalingFactor: h.scalingFactor,
    shiftFactor: h.shiftFactor,
  };
}

/** Whether any tensor is named under `prefix` (a module is present, even if some of its tensors are not). */
function hasPrefix(w: WeightSet, prefix: string): boolean {
  return w.names().some((n) => n.startsWith(prefix));
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Shape of a 2-D conv weight [out, in, k, k] with the given kernel. @throws MissingWeightError, WeightShapeError */
function convShape(w: WeightSet, name: string, kernel: number): { out: number; in: number } {
  const s = w.shape(name);
  if (s.length !== 4 || s[2] !== kernel || s[3] !== kernel) throw new WeightShapeError(name, w.where, s, [-1, -1, kernel, kernel]);
  return { out: s[0], in: s[1] };
}

/** Levels 0..n−1 under `prefix` (`encoder.down.` / `decoder.up.`), checked contiguous. */
function levelCount(w: WeightSet, prefix: string): number {
  const n = w.maxIndex(prefix) + 1;
  if (n < 1) throw new MissingWeightError(`${prefix}0.block.0.conv1.weight`, w.where);
  for (let i = 0; i < n; i++) {
    if (w.maxIndex(`${prefix}${i}.block.`) < 0) throw new MissingWeightError(`${prefix}${i}.block.0.conv1.weight`, w.where);
  }
  return n;
}

/** Res blocks per level (the same at every level) and the levels with attention blocks. */
function levelBlocks(w: WeightSet, prefix: string, levels: number): { resBlocks: number; attentionLevels: number[] } {
  const resBlocks = w.maxIndex(`${prefix}0.block.`) + 1;
  const attentionLevels: number[] = [];
  for (let i = 0; i < levels; i++) {
    const n = w.maxIndex(`${prefix}${i}.block.`) + 1;
    if (n !== resBlocks) throw new VaeConfigError(w.where, `${prefix}${i} has ${n} res blocks, ${prefix}0 has ${resBlocks}`);
    const attn = w.maxIndex(`${prefix}${i}.attn.`) + 1;
    // LDM appends one attention block after every res block of a level in attn_resolutions.
    if (attn > 0 && attn !== resBlocks) throw new VaeConfigError(w.where, `${prefix}${i} has ${attn} attention blocks for ${resBlocks} res blocks`);
    if (attn > 0) attentionLevels.push(i);
  }
  return { resBlocks, attentionLevels };
}

interface DetectedHalf {
  widths: number[];
  resBlocks: number;
  attentionLevels: number[];
  midAttention: boolean;
  z: number;
  latent: number;
}

function detectEncoder(w: WeightSet): DetectedHalf & { ch: number; inChannels: number; quantConv: boolean } {
  const convIn = convShape(w, 'encoder.conv_in.weight', 3);
  const levels = levelCount(w, 'encoder.down.');
  const { resBlocks, attentionLevels } = levelBlocks(w, 'encoder.down.', levels);
  const widths = Array.from({ length: levels }, (_, i) => convShape(w, `encoder.down.${i}.block.0.conv1.weight`, 3).out);
  const convOut = convShape(w, 'encoder.conv_out.weight', 3);
  if (convOut.in !== widths[levels - 1]) {
    throw new VaeConfigError(w.where, `encoder.conv_out reads ${convOut.in} channels, the last level (encoder.down.${levels - 1}) is ${widths[levels - 1]} wide`);
  }
  if (convOut.out % 2 !== 0) {
    throw new VaeConfigError(w.where, `encoder.conv_out gives ${convOut.out} channels; AutoencoderKL needs 2·z (mean and logvar, double_z)`);
  }
  const z = convOut.out / 2;
  let latent = z;
  const quantConv = w.has('quant_conv.weight');
  if (quantConv) {
    const q = convShape(w, 'quant_conv.weight', 1);
    if (q.in !== 2 * z) throw new VaeConfigError(w.where, `quant_conv reads ${q.in} channels, encoder.conv_out gives ${2 * z}`);
    if (q.out % 2 !== 0) throw new VaeConfigError(w.where, `quant_conv gives ${q.out} channels; it must give 2·latent (mean and logvar)`);
    latent = q.out / 2;
  }
  return { widths, resBlocks, attentionLevels, midAttention: hasPrefix(w, 'encoder.mid.attn_1.'), z, latent, ch: convIn.out, inChannels: convIn.in, quantConv };
}

function detectDecoder(w: WeightSet): DetectedHalf & { outChannels: number; postQuantConv: boolean } {
  const convIn = convShape(w, 'decoder.conv_in.weight', 3);
  const levels = levelCount(w, 'decoder.up.');
  const { resBlocks, attentionLevels } = levelBlocks(w, 'decoder.up.', levels);
  const widths = Array.from({ length: levels }, (_, i) => convShape(w, `decoder.up.${i}.block.0.conv1.weight`, 3).out);
  if (convIn.out !== widths[levels - 1]) {
    throw new VaeConfigError(w.where, `decoder.conv_in gives ${convIn.out} channels, the lowest level (decoder.up.${levels - 1}) is ${widths[levels - 1]} wide`);
  }
  const convOut = convShape(w, 'decoder.conv_out.weight', 3);
  if (convOut.in !== widths[0]) throw new VaeConfigError(w.where, `decoder.conv_out reads ${convOut.in} channels, level 0 (decoder.up.0) is ${widths[0]} wide`);
  const z = convIn.in;
  let latent = z;
  const postQuantConv = w.has('post_quant_conv.weight');
  if (postQuantConv) {
    const p = convShape(w, 'post_quant_conv.weight', 1);
    if (p.out !== z) throw new VaeConfigError(w.where, `post_quant_conv gives ${p.out} channels, decoder.conv_in reads ${z}`);
    latent = p.in;
  }
  return { widths, resBlocks, attentionLevels, midAttention: hasPrefix(w, 'decoder.mid.attn_1.'), z, latent, outChannels: convOut.out, postQuantConv };
}
