/**
 * Architecture detection for the Stable Diffusion 3.x transformer (MMDiT: SD3 Medium; SD3.5 Large and Large
 * Turbo with QK-norm; SD3.5 Medium's MMDiT-X with extra x-only self-attention in its first layers), from the
 * tensors of a WeightSet under the original (Stability AI / ComfyUI `mmdit.py`) names, a single file's
 * `model.diffusion_model.` prefix stripped or a diffusers folder renamed by checkpoints/key-maps/diffusers-sd3.ts.
 *
 * What the tensors tell (as ComfyUI's `model_detection` reads an SD3 file, and upstream diffusers'
 * `convert_sd3_transformer_checkpoint_to_diffusers`):
 * - hidden size and patch size: `x_embedder.proj.weight` [hidden, in_channels, p, p];
 * - depth: the number of `joint_blocks.N`;
 * - out channels: `final_layer.linear.weight` [p²·out_channels, hidden];
 * - pos_embed grid: `pos_embed` [1, M², hidden] → max size M (cropped to the latent's patch grid at run time);
 * - context width (T5 width, diffusers `joint_attention_dim`): `context_embedder.weight` [hidden, ctx];
 * - pooled width (CLIP-L + CLIP-G text_embeds): `y_embedder.mlp.0.weight` [hidden, pooled];
 * - timestep frequency width: `t_embedder.mlp.0.weight` [hidden, 256];
 * - QK-norm (RMS, per head): `joint_blocks.0.x_block.attn.ln_q.weight` [head_dim] — which also gives the head width;
 * - dual-attention (MMDiT-X) layers: the blocks with `x_block.attn2.qkv.weight` (ComfyUI `x_block_self_attn_layers`,
 *   diffusers `dual_attention_layers`);
 * - MLP ratio: `joint_blocks.0.x_block.mlp.fc1.weight` [ratio·hidden, hidden].
 *
 * What they cannot tell comes as hints (MmditHints): the head split when there is no QK-norm, and the norm eps.
 */
import { WeightShapeError, type WeightSet } from '../../weights/weight-set';

/** What detection needs besides the tensors. All optional: MMDIT_FAMILY_HINTS.sd3 gives the family defaults. */
export interface MmditHints {
  /**
   * Attention heads (diffusers `num_attention_heads`). With QK-norm the head width is read from `ln_q` and a
   * given count must agree with it.
   */
  heads?: number;
  /**
   * Channels per head (diffusers `attention_head_dim`). Default 64: every SD3 / SD3.5 release (Stability AI's
   * MMDiT sets hidden = 64·depth and heads = depth).
   */
  headDim?: number;
  /** eps of the affine-free LayerNorms (norm1, norm2, the final layer's). Default 1e-6 (mmdit.py, diffusers). */
  layerNormEps?: number;
  /** eps of the QK RMSNorms. Default 1e-6 (mmdit.py `RMSNorm(eps=1e-6)`, diffusers `Attention(eps=1e-6)`). */
  qkNormEps?: number;
}

/** Family conventions (Stability AI sd3 configs; diffusers SD3Transformer2DModel, JointTransformerBlock). */
export const MMDIT_FAMILY_HINTS = {
  sd3: { headDim: 64, layerNormEps: 1e-6, qkNormEps: 1e-6 },
} as const satisfies Record<string, MmditHints>;

/** The released models a detected configuration matches (Large and Large Turbo share one architecture). */
export type MmditVariant = 'sd3-medium' | 'sd3.5-large' | 'sd3.5-medium';

/** A detected MMDiT: everything the graph builder needs. */
export interface MmditConfig {
  /** Side of the square patches (`x_embedder.proj` kernel and stride; 2 in every release). */
  patchSize: number;
  /** Latent channels of `sample` (16). */
  inChannels: number;
  /** Latent channels of `out_sample` (16). */
  outChannels: number;
  /** Transformer width (1536 SD3 / SD3.5 Medium, 2432 SD3.5 Large). */
  hiddenSize: number;
  /** Joint blocks (24 / 38). */
  depth: number;
  heads: number;
  /** hiddenSize / heads. */
  headDim: number;
  /** Side M of the stored pos_embed grid (192 SD3 Medium / SD3.5 Large, 384 SD3.5 Medium): latents up to M·p. */
  posEmbedMaxSize: number;
  /** Width of encoder_hidden_states (4096: T5-XXL, with the CLIP states zero-padded to it). */
  contextDim: number;
  /** Width of pooled_projections (2048: CLIP-L 768 + CLIP-G 1280 text_embeds). */
  pooledDim: number;
  /** Width of the sinusoidal timestep embedding (256). */
  timestepEmbedDim: number;
  /** Hidden width of every block's MLP (mlpRatio · hiddenSize). */
  mlpHiddenDim: number;
  mlpRatio: number;
  /** RMS QK-norm per head (SD3.5) or none (SD3 Medium). */
  qkNorm: 'rms' | null;
  /** Blocks whose x stream has the second, x-only self-attention `attn2` (SD3.5 Medium: 0..12). */
  dualAttentionLayers: number[];
  layerNormEps: number;
  qkNormEps: number;
  /** The released model with this shape set, or null (a fine-tune of another size, a test model). */
  variant: MmditVariant | null;
}

/** An error in the hints (not in the file): names the hint and the rule. */
export class MmditHintError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MmditHintError';
  }
}

/**
 * Hints from a diffusers `transformer/config.json` (SD3Transformer2DModel): `num_attention_heads`,
 * `attention_head_dim` (both required there, defaults 18 × 64 in the class).
 * @throws MmditHintError when a field is not a positive integer.
 */
export function mmditHintsFromDiffusersConfig(config: Record<string, unknown>): MmditHints {
  const hints: MmditHints = {};
  if (config.num_attention_heads !== undefined) hints.heads = positiveInteger('num_attention_heads', config.num_attention_heads);
  if (config.attention_head_dim !== undefined) hints.headDim = positiveInteger('attention_head_dim', config.attention_head_dim);
  return hints;
}

/**
 * Read an MMDiT's architecture from its tensors.
 * @param weights original names, prefix stripped (`x_embedder.proj.weight`, `joint_blocks.0.x_block.attn.qkv.weight`, …).
 * @throws MissingWeightError when a tensor every MMDiT has is absent (no `x_embedder.proj.weight`: not an SD3
 *         transformer); WeightShapeError when shapes contradict each other (a width other than the patch
 *         embedding's, a pos_embed that is not a square grid, a final projection that is not p²·channels wide);
 *         Error when the joint blocks are not numbered 0..depth−1; MmditHintError when the hints do not fit.
 */
export function detectMmditConfig(weights: WeightSet, hints: MmditHints = {}): MmditConfig {
  const w = weights;
  const proj = expectRank(w, 'x_embedder.proj.weight', 4);
  const [hiddenSize, inChannels, kh, kw] = proj;
  if (kh !== kw) throw new WeightShapeError('x_embedder.proj.weight', w.where, proj, [hiddenSize, inChannels, kh, kh]);
  const patchSize = kh;

  const pos = expectRank(w, 'pos_embed', 3);
  const posEmbedMaxSize = Math.round(Math.sqrt(pos[1]));
  if (pos[0] !== 1 || pos[2] !== hiddenSize || posEmbedMaxSize * posEmbedMaxSize !== pos[1]) {
    throw new WeightShapeError('pos_embed', w.where, pos, [1, posEmbedMaxSize * posEmbedMaxSize, hiddenSize]);
  }

  const [tRows, timestepEmbedDim] = expectRank(w, 't_embedder.mlp.0.weight', 2);
  if (tRows !== hiddenSize) throw new WeightShapeError('t_embedder.mlp.0.weight', w.where, w.shape('t_embedder.mlp.0.weight'), [hiddenSize, timestepEmbedDim]);
  const [yRows, pooledDim] = expectRank(w, 'y_embedder.mlp.0.weight', 2);
  if (yRows !== hiddenSize) throw new WeightShapeError('y_embedder.mlp.0.weight', w.where, w.shape('y_embedder.mlp.0.weight'), [hiddenSize, pooledDim]);
  // diffusers calls context_embedder's output width caption_projection_dim; the joint attention needs it = hidden.
  const [cRows, contextDim] = expectRank(w, 'context_embedder.weight', 2);
  if (cRows !== hiddenSize) throw new WeightShapeError('context_embedder.weight', w.where, w.shape('context_embedder.weight'), [hiddenSize, contextDim]);

  const finalRows = expectRank(w, 'final_layer.linear.weight', 2)[0];
  const outChannels = finalRows / (patchSize * patchSize);
  if (!Number.isInteger(outChannels)) {
    throw new Error(`${w.where}: final_layer.linear has ${finalRows} outputs, not a multiple of patch_size² = ${patchSize * patchSize}`);
  }

  const depth = w.maxIndex('joint_blocks.') + 1;
  if (depth === 0) throw new Error(`${w.where}: no joint_blocks.N tensors (not an SD3 MMDiT)`);
  const dualAttentionLayers: number[] = [];
  for (let i = 0; i < depth; i++) {
    const block = `joint_blocks.${i}`;
    if (!w.has(`${block}.x_block.attn.qkv.weight`) || !w.has(`${block}.context_block.attn.qkv.weight`)) {
      throw new Error(`${w.where}: joint blocks go up to ${depth - 1} but ${block} has no x_block / context_block attention (attn.qkv)`);
    }
    if (w.has(`${block}.x_block.attn2.qkv.weight`)) dualAttentionLayers.push(i);
  }

  const mlpHiddenDim = expectRank(w, 'joint_blocks.0.x_block.mlp.fc1.weight', 2)[0];
  const qkNorm = w.has('joint_blocks.0.x_block.attn.ln_q.weight') ? 'rms' : null;
  const { heads, headDim } = resolveHeads(w, hiddenSize, qkNorm !== null, hints);

  const config: MmditConfig = {
    patchSize,
    inChannels,
    outChannels,
    hiddenSize,
    depth,
    heads,
    headDim,
    posEmbedMaxSize,
    contextDim,
    pooledDim,
    timestepEmbedDim,
    mlpHiddenDim,
    mlpRatio: mlpHiddenDim / hiddenSize,
    qkNorm,
    dualAttentionLayers,
    layerNormEps: positiveNumber('layerNormEps', hints.layerNormEps ?? MMDIT_FAMILY_HINTS.sd3.layerNormEps),
    qkNormEps: positiveNumber('qkNormEps', hints.qkNormEps ?? MMDIT_FAMILY_HINTS.sd3.qkNormEps),
    variant: null,
  };
  config.variant = variantOf(config);
  return config;
}

/**
 * The released model whose shapes these are (Stability AI's model cards and diffusers configs): SD3 Medium
 * (24 blocks × 1536, no QK-norm, 192² grid), SD3.5 Large / Large Turbo (38 × 2432, QK-norm, 192²), SD3.5 Medium
 * (24 × 1536, QK-norm, MMDiT-X layers 0..12, 384²); null for any other shape set.
 */
function variantOf(c: MmditConfig): MmditVariant | null {
  const common = c.patchSize === 2 && c.inChannels === 16 && c.outChannels === 16 && c.contextDim === 4096 && c.pooledDim === 2048 && c.mlpRatio === 4;
  if (!common) return null;
  const dual = c.dualAttentionLayers.join(',');
  if (c.depth === 24 && c.hiddenSize === 1536 && c.qkNorm === null && dual === '' && c.posEmbedMaxSize === 192) return 'sd3-medium';
  if (c.depth === 38 && c.hiddenSize === 2432 && c.qkNorm === 'rms' && dual === '' && c.posEmbedMaxSize === 192) return 'sd3.5-large';
  if (c.depth === 24 && c.hiddenSize === 1536 && c.qkNorm === 'rms' && dual === '0,1,2,3,4,5,6,7,8,9,10,11,12' && c.posEmbedMaxSize === 384) return 'sd3.5-medium';
  return null;
}

/** Heads and head width: from `ln_q` when the model has QK-norm, else from the hints (default 64 per head). */
function resolveHeads(w: WeightSet, hidden: number, qkNorm: boolean, hints: MmditHints): { heads: number; headDim: number } {
  if (hints.heads !== undefined) positiveInteger('heads', hints.heads);
  if (hints.headDim !== undefined) positiveInteger('headDim', hints.headDim);
  if (hints.heads !== undefined && hints.headDim !== undefined && hints.heads * hints.headDim !== hidden) {
    throw new MmditHintError(`${hints.heads} heads × ${hints.headDim} channels ≠ the transformer's width ${hidden}`);
  }
  let headDim: number;
  if (qkNorm) {
    headDim = expectRank(w, 'joint_blocks.0.x_block.attn.ln_q.weight', 1)[0];
    const hinted = hints.headDim ?? (hints.heads !== undefined ? hidden / hints.heads : headDim);
    if (hinted !== headDim) throw new MmditHintError(`the hints give ${hinted} channels per head, the QK-norm weights (ln_q) have ${headDim}`);
  } else {
    headDim = hints.headDim ?? (hints.heads !== undefined ? hidden / hints.heads : MMDIT_FAMILY_HINTS.sd3.headDim);
  }
  const heads = hidden / headDim;
  if (!Number.isInteger(headDim) || !Number.isInteger(heads)) throw new MmditHintError(`a head width of ${headDim} does not divide the transformer's width ${hidden} (give heads / headDim hints)`);
  return { heads, headDim };
}

function positiveInteger(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new MmditHintError(`${field} must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

function positiveNumber(field: string, v: unknown): number {
  if (typeof v !== 'number' || !(v > 0)) throw new MmditHintError(`${field} must be a positive number, got ${JSON.stringify(v)}`);
  return v;
}

function expectRank(w: WeightSet, name: string, rank: number): number[] {
  const shape = w.shape(name);
  if (shape.length !== rank) throw new WeightShapeError(name, w.where, shape, new Array(rank).fill(-1));
  return shape;
}
