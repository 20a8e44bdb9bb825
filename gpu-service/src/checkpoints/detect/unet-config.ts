/**
 * Architecture detection for Stable Diffusion UNets in the LDM layout (`openaimodel.UNetModel`: SD 1.x,
 * SD 2.x, SDXL base and refiner, inpainting variants), from the tensors of a WeightSet under canonical names
 * (`input_blocks.1.1.proj_in.weight`, …; a single file's `model.diffusion_model.` prefix stripped, a diffusers
 * folder renamed by checkpoints/key-maps/diffusers-unet.ts).
 *
 * What the tensors tell (the way ComfyUI's `model_detection.detect_unet_config` reads them): input/output
 * channels (`input_blocks.0.0` / `out.2`), model_channels, the levels (a level ends at a downsampler
 * `input_blocks.N.0.op`), each level's channels and res-block count, the transformer depth after every res
 * block of the input, middle and output paths (0 = none: SDXL's first level has none), context_dim
 * (`attn2.to_k` input width), linear vs 1×1-conv projections (`proj_in.weight` rank), and the SDXL-style
 * label embedding's input width (`label_emb.0.0`).
 *
 * What they cannot tell comes as hints (UnetHints): the attention head split, GroupNorm groups, the norm eps
 * and the width of each time-id embedding; family defaults in UNET_FAMILY_HINTS.
 */
import { MissingWeightError, WeightShapeError, type WeightSet } from '../../weights/weight-set';

/**
 * How attention channels split into heads (not derivable from the weights).
 * - `heads`: a head count, for every level or one per level (top level first). This is what diffusers'
 *   UNet2DConditionModel config calls `attention_head_dim` (a legacy name: the values are head *counts*;
 *   SD 1.x 8, SD 2.x [5, 10, 20, 20], SDXL [5, 10, 20]) and ComfyUI/LDM `num_heads`. The middle block uses
 *   the last level's count (diffusers `num_attention_heads[-1]`).
 * - `headDim`: a fixed channel width per head (LDM/ComfyUI `num_head_channels`; SD 2.x and SDXL: 64); a
 *   block of C channels then has C / headDim heads.
 */
export type UnetHeads = { heads: number | readonly number[] } | { headDim: number };

/** What detection needs besides the tensors. */
export interface UnetHints {
  /** Head split of every spatial transformer. Required: a wrong split still runs, with wrong numbers. */
  attentionHeads: UnetHeads;
  /** GroupNorm groups of every res block, transformer input norm and the output norm. Default 32. */
  groupNormGroups?: number;
  /**
   * eps of the res-block GroupNorms and the output GroupNorm (diffusers `norm_eps`; LDM's `nn.GroupNorm`
   * default). Default 1e-5.
   */
  normEps?: number;
  /**
   * Width of the sinusoidal embedding of each SDXL time id (diffusers `addition_time_embed_dim`; ComfyUI's
   * `Timestep(256)` embedder). Only used when the UNet has `label_emb`. Default 256 (SDXL base and refiner).
   */
  additionTimeEmbedDim?: number;
}

/** Family conventions for the hints (ComfyUI supported_models, the families' original yaml configs). */
export const UNET_FAMILY_HINTS = {
  /** SD 1.x (v1-inference.yaml: num_heads 8). */
  sd1: { attentionHeads: { heads: 8 }, groupNormGroups: 32, normEps: 1e-5 },
  /** SD 2.x (v2-inference*.yaml: num_head_channels 64). */
  sd2: { attentionHeads: { headDim: 64 }, groupNormGroups: 32, normEps: 1e-5 },
  /** SDXL base and refiner (sd_xl_base.yaml / sd_xl_refiner.yaml: num_head_channels 64, 256-wide time-id embeddings). */
  sdxl: { attentionHeads: { headDim: 64 }, groupNormGroups: 32, normEps: 1e-5, additionTimeEmbedDim: 256 },
} as const satisfies Record<string, UnetHints>;

/**
 * Hints from a diffusers `unet/config.json` (UNet2DConditionModel): heads from `num_attention_heads`, else
 * `attention_head_dim` (which diffusers itself reads as the head *count*, `num_attention_heads = num_attention_heads
 * or attention_head_dim`; default 8), `norm_num_groups` (default 32), `norm_eps` (default 1e-5),
 * `addition_time_embed_dim` (when set).
 * @throws UnetHintError when a field has the wrong type.
 */
export function unetHintsFromDiffusersConfig(config: Record<string, unknown>): UnetHints {
  const heads = config.num_attention_heads ?? config.attention_head_dim ?? 8;
  const hints: UnetHints = { attentionHeads: { heads: headCounts('attention_head_dim', heads) } };
  if (config.norm_num_groups !== undefined && config.norm_num_groups !== null) hints.groupNormGroups = positiveNumber('norm_num_groups', config.norm_num_groups);
  if (config.norm_eps !== undefined && config.norm_eps !== null) hints.normEps = positiveNumber('norm_eps', config.norm_eps);
  if (config.addition_time_embed_dim !== undefined && config.addition_time_embed_dim !== null) hints.additionTimeEmbedDim = positiveNumber('addition_time_embed_dim', config.addition_time_embed_dim);
  return hints;
}

/**
 * Hints from the `unet_config.params` of an LDM / SGM yaml (A1111 sidecar, ComfyUI's configs): `num_head_channels`
 * (≠ −1: a head width) else `num_heads` (a count for every level), as `openaimodel.UNetModel` reads them;
 * GroupNorm groups are 32 there (`normalization()`).
 * @throws UnetHintError when neither is set.
 */
export function unetHintsFromLdmParams(params: { num_heads?: number; num_head_channels?: number }): UnetHints {
  const width = params.num_head_channels ?? -1;
  const heads = params.num_heads ?? -1;
  if (width !== -1) return { attentionHeads: { headDim: positiveNumber('num_head_channels', width) }, groupNormGroups: 32 };
  if (heads !== -1) return { attentionHeads: { heads: positiveNumber('num_heads', heads) }, groupNormGroups: 32 };
  throw new UnetHintError('unet_config.params sets neither num_heads nor num_head_channels');
}

function positiveNumber(field: string, v: unknown): number {
  if (typeof v !== 'number' || !(v > 0)) throw new UnetHintError(`${field} must be a positive number, got ${JSON.stringify(v)}`);
  return v;
}

function headCounts(field: string, v: unknown): number | number[] {
  if (Array.isArray(v)) return v.map((x) => positiveNumber(field, x));
  return positiveNumber(field, v);
}

/** One resolution level, top (full resolution) first. */
export interface UnetLevel {
  /** Feature channels of the level's res blocks (model_channels × channel_mult). */
  channels: number;
  /** channels / model_channels (LDM `channel_mult`). */
  channelMult: number;
  /** Res blocks on the input path (LDM `num_res_blocks`); the output path has one more. */
  numResBlocks: number;
  /** Transformer depth after each input res block (length numResBlocks; 0 = no transformer). */
  transformerDepth: number[];
  /** Transformer depth after each output res block (length numResBlocks + 1; 0 = none). */
  transformerDepthOutput: number[];
  /** Attention heads of this level's transformers (resolved from the hints); 0 when it has none. */
  heads: number;
}

/** The middle block: res block, then (when transformerDepth > 0) a transformer and a second res block. */
export interface UnetMiddle {
  /** Transformer depth (0 = `middle_block.0` only, as ComfyUI's transformer_depth_middle −1). */
  transformerDepth: number;
  /** Heads of the middle transformer (0 when none). */
  heads: number;
}

/** A detected UNet: everything the graph builder needs. */
export interface UnetConfig {
  /** Channels of `sample` (4; 9 for inpainting: latent + mask + masked-image latent; 8 for instruct-pix2pix). */
  inChannels: number;
  /** Channels of `out_sample`. */
  outChannels: number;
  /** conv_in width (LDM `model_channels`). */
  modelChannels: number;
  /** Width of the sinusoidal timestep embedding (= model_channels in every SD UNet). */
  timestepEmbedDim: number;
  /** Width of the time embedding MLP's output (4 × model_channels). */
  timeEmbedDim: number;
  levels: UnetLevel[];
  /** null: no middle block at all. */
  middle: UnetMiddle | null;
  /** Width of encoder_hidden_states (768 SD1, 1024 SD2, 2048 SDXL, 1280 refiner); null without attention. */
  contextDim: number | null;
  /** Linear proj_in/proj_out (SD 2.x, SDXL) instead of 1×1 convolutions (SD 1.x). */
  useLinearInTransformer: boolean;
  /**
   * SDXL-style additional embedding (`label_emb.0`, diffusers `add_embedding`, addition_embed_type
   * "text_time"): input width = pooled text embedding + time ids × timeIdEmbedDim; null without one.
   */
  adm: { inChannels: number; timeIdEmbedDim: number } | null;
  groupNormGroups: number;
  /** eps of the res-block and output GroupNorms. */
  normEps: number;
  /** eps of each spatial transformer's input GroupNorm (LDM `Normalize`, diffusers Transformer2DModel: 1e-6). */
  transformerNormEps: number;
  /** eps of the transformer blocks' LayerNorms (torch default, diffusers `norm_eps` of BasicTransformerBlock: 1e-5). */
  layerNormEps: number;
}

/** Hint defaults not taken from a family (GroupNorm 32, eps 1e-5, time ids 256). */
const DEFAULTS = { groupNormGroups: 32, normEps: 1e-5, additionTimeEmbedDim: 256 };

/** An error in the hints (not in the file): names the hint and the rule. */
export class UnetHintError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnetHintError';
  }
}

/**
 * Read a UNet's architecture from its tensors.
 * @param weights canonical LDM names (prefix stripped).
 * @throws MissingWeightError when a tensor the architecture needs is absent (e.g. no `input_blocks.0.0.weight`:
 *         not an LDM UNet), WeightShapeError when shapes contradict each other (channels of a block, context
 *         widths), Error when the block structure is not a UNet (output blocks not mirroring the input path),
 *         UnetHintError when the hints do not fit (heads list length, channels not divisible by the head count
 *         or width, groups).
 */
export function detectUnetConfig(weights: WeightSet, hints: UnetHints): UnetConfig {
  const w = weights;
  const convIn = expectRank(w, 'input_blocks.0.0.weight', 4);
  const [modelChannels, inChannels] = convIn;
  const outConv = expectRank(w, 'out.2.weight', 4);
  const outChannels = outConv[0];
  const timeEmbed0 = expectRank(w, 'time_embed.0.weight', 2);
  const [timeEmbedDim, timestepEmbedDim] = timeEmbed0;

  const transformers: string[] = [];
  const depthAt = (block: string): number => {
    const depth = w.maxIndex(`${block}.1.transformer_blocks.`) + 1;
    if (depth > 0) transformers.push(`${block}.1`);
    return depth;
  };

  // Input path: after conv_in, each block is a res block (+ optional transformer) or a downsampler.
  const inputBlockCount = w.maxIndex('input_blocks.') + 1;
  const levels: Array<Omit<UnetLevel, 'heads' | 'transformerDepthOutput'>> = [];
  let current: Omit<UnetLevel, 'heads' | 'transformerDepthOutput'> | null = null;
  for (let n = 1; n < inputBlockCount; n++) {
    const block = `input_blocks.${n}`;
    if (w.has(`${block}.0.op.weight`)) {
      if (!current) throw new Error(`${w.where}: ${block} downsamples before any res block of its level`);
      levels.push(current);
      current = null;
      continue;
    }
    if (!w.has(`${block}.0.in_layers.0.weight`)) throw new Error(`${w.where}: ${block} is neither a res block (${block}.0.in_layers.*) nor a downsampler (${block}.0.op.*)`);
    const channels = expectRank(w, `${block}.0.out_layers.3.weight`, 4)[0];
    if (current && current.channels !== channels) {
      throw new WeightShapeError(`${block}.0.out_layers.3.weight`, w.where, w.shape(`${block}.0.out_layers.3.weight`), [current.channels, current.channels, 3, 3]);
    }
    current ??= { channels, channelMult: channels / modelChannels, numResBlocks: 0, transformerDepth: [] };
    current.numResBlocks += 1;
    current.transformerDepth.push(depthAt(block));
  }
  if (!current) throw new Error(`${w.where}: the input path ends with a downsampler (no res block at the lowest level)`);
  levels.push(current);

  // Output path: mirrors the input path from the lowest level up, one more res block per level.
  const expectedOutputBlocks = levels.reduce((s, l) => s + l.numResBlocks + 1, 0);
  const outputBlockCount = w.maxIndex('output_blocks.') + 1;
  if (outputBlockCount !== expectedOutputBlocks) {
    throw new Error(`${w.where}: ${outputBlockCount} output blocks, but an input path of ${levels.map((l) => l.numResBlocks).join('+')} res blocks over ${levels.length} levels needs ${expectedOutputBlocks}`);
  }
  const outputDepths: number[][] = levels.map(() => []);
  let o = 0;
  for (let level = levels.length - 1; level >= 0; level--) {
    for (let j = 0; j <= levels[level].numResBlocks; j++, o++) {
      const block = `output_blocks.${o}`;
      if (!w.has(`${block}.0.in_layers.0.weight`)) throw new MissingWeightError(`${block}.0.in_layers.0.weight`, w.where);
      outputDepths[level].push(depthAt(block));
    }
  }

  // Middle block (ComfyUI: transformer_depth_middle from middle_block.1.transformer_blocks).
  let middleDepth: number | null = null;
  if (w.has('middle_block.0.in_layers.0.weight')) {
    middleDepth = w.maxIndex('middle_block.1.transformer_blocks.') + 1;
    if (middleDepth > 0) transformers.push('middle_block.1');
  }

  // Cross-attention width and projection kind, the same for every transformer.
  let contextDim: number | null = null;
  let useLinear = false;
  for (const [i, t] of transformers.entries()) {
    const ctx = expectRank(w, `${t}.transformer_blocks.0.attn2.to_k.weight`, 2)[1];
    const linear = w.shape(`${t}.proj_in.weight`).length === 2;
    if (i === 0) {
      contextDim = ctx;
      useLinear = linear;
    } else if (ctx !== contextDim) {
      throw new WeightShapeError(`${t}.transformer_blocks.0.attn2.to_k.weight`, w.where, w.shape(`${t}.transformer_blocks.0.attn2.to_k.weight`), [-1, contextDim!]);
    } else if (linear !== useLinear) {
      throw new Error(`${w.where}: ${t}.proj_in is a ${linear ? 'Linear' : '1×1 convolution'}, ${transformers[0]}.proj_in is not`);
    }
  }

  const adm = w.has('label_emb.0.0.weight')
    ? { inChannels: expectRank(w, 'label_emb.0.0.weight', 2)[1], timeIdEmbedDim: hints.additionTimeEmbedDim ?? DEFAULTS.additionTimeEmbedDim }
    : null;
  if (adm && (!Number.isInteger(adm.timeIdEmbedDim) || adm.timeIdEmbedDim <= 0 || adm.timeIdEmbedDim >= adm.inChannels)) {
    throw new UnetHintError(`additionTimeEmbedDim ${adm.timeIdEmbedDim} must be a positive integer below label_emb's input width ${adm.inChannels}`);
  }

  const groups = hints.groupNormGroups ?? DEFAULTS.groupNormGroups;
  for (const c of [modelChannels, ...levels.map((l) => l.channels)]) {
    if (!Number.isInteger(groups) || groups <= 0 || c % groups !== 0) throw new UnetHintError(`groupNormGroups ${groups} does not divide the UNet's ${c} channels`);
  }

  const resolvedLevels: UnetLevel[] = levels.map((l, i) => {
    const hasAttention = l.transformerDepth.some((d) => d > 0) || outputDepths[i].some((d) => d > 0);
    return { ...l, transformerDepthOutput: outputDepths[i], heads: hasAttention ? headsFor(hints.attentionHeads, i, levels.length, l.channels) : 0 };
  });
  const bottom = levels[levels.length - 1];
  const middle = middleDepth === null ? null : { transformerDepth: middleDepth, heads: middleDepth > 0 ? headsFor(hints.attentionHeads, levels.length - 1, levels.length, bottom.channels) : 0 };

  return {
    inChannels,
    outChannels,
    modelChannels,
    timestepEmbedDim,
    timeEmbedDim,
    levels: resolvedLevels,
    middle,
    contextDim,
    useLinearInTransformer: useLinear,
    adm,
    groupNormGroups: groups,
    normEps: hints.normEps ?? DEFAULTS.normEps,
    transformerNormEps: 1e-6,
    layerNormEps: 1e-5,
  };
}

/** Heads of a transformer with `channels` channels at `level` of `levelCount`. @throws UnetHintError */
function headsFor(spec: UnetHeads, level: number, levelCount: number, channels: number): number {
  let heads: number;
  if ('headDim' in spec) {
    if (!Number.isInteger(spec.headDim) || spec.headDim <= 0 || channels % spec.headDim !== 0) {
      throw new UnetHintError(`attention head width ${spec.headDim} does not divide level ${level}'s ${channels} channels`);
    }
    heads = channels / spec.headDim;
  } else if (typeof spec.heads === 'number') {
    heads = spec.heads;
  } else {
    if (spec.heads.length !== levelCount) throw new UnetHintError(`attention heads list [${spec.heads.join(', ')}] has ${spec.heads.length} entries, the UNet has ${levelCount} levels`);
    heads = spec.heads[level];
  }
  if (!Number.isInteger(heads) || heads <= 0 || channels % heads !== 0) throw new UnetHintError(`${heads} attention heads do not split level ${level}'s ${channels} channels`);
  return heads;
}

function expectRank(w: WeightSet, name: string, rank: number): number[] {
  const shape = w.shape(name);
  if (shape.length !== rank) throw new WeightShapeError(name, w.where, shape, new Array(rank).fill(-1));
  return shape;
}
