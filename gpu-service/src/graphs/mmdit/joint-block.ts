/**
 * One MMDiT joint block `joint_blocks.i` (ComfyUI mmdit.py `JointBlock` / `_block_mixing` / `DismantledBlock`,
 * with SD3.5 Medium's `x_block_self_attn`; diffusers `JointTransformerBlock` + `JointAttnProcessor2_0`):
 *
 *   per stream s ∈ {context_block over ctx, x_block over x}, m = adaLN_modulation.1(SiLU(c)) split in equal chunks:
 *     (shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp [, shift_msa2, scale_msa2, gate_msa2])
 *     n_s = LayerNorm(s) (no affine, eps 1e-6);  q, k, v = attn.qkv(n_s·(1 + scale_msa) + shift_msa) split in 3
 *     QK-norm (SD3.5): q, k ← RMSNorm per head (attn.ln_q / ln_k, [head_dim])
 *   joint attention over the concatenated sequence [ctx; x] (context first, as mmdit.py; diffusers concatenates
 *   [x; ctx], the same per-token result): softmax(q·kᵀ/√head_dim)·v per head, split back into the two streams
 *   x   += gate_msa·attn.proj(x part)
 *   x   += gate_msa2·attn2.proj(selfattn(attn2.qkv(n_x·(1 + scale_msa2) + shift_msa2)))     dual-attention layers only
 *   x   += gate_mlp·mlp(LayerNorm(x)·(1 + scale_mlp) + shift_mlp)        mlp = fc1 → GELU(tanh) → fc2
 *   ctx gets the same attention/MLP update, except in the last block, whose context_block is "pre-only": two
 *   modulation chunks (shift, scale), no attn.proj and no mlp, and the context stream ends there.
 */
import type { MmditConfig } from '../../checkpoints/detect/mmdit-config';
import type { Layers } from '../layers';

/** What one block returns: the new x tokens, and the new context (null after the pre-only last block). */
export interface JointBlockOutput {
  x: string;
  context: string | null;
}

/**
 * Emit block `index` over x [B, S, hidden] and context [B, L, hidden], with `cSilu` = SiLU(c) [B, hidden].
 * @throws WeightShapeError / MissingWeightError when the block's tensors do not fit the config (a 6-chunk
 *         modulation where a dual-attention layer needs 9, a QK-norm of another head width, …).
 */
export function jointBlock(layers: Layers, x: string, context: string, cSilu: string, index: number, c: MmditConfig): JointBlockOutput {
  const prefix = `joint_blocks.${index}`;
  const preOnly = index === c.depth - 1;
  const dual = c.dualAttentionLayers.includes(index);
  const g = layers.g;

  const cb = `${prefix}.context_block`;
  const cm = modulation(layers, cSilu, `${cb}.adaLN_modulation.1`, preOnly ? 2 : 6, c.hiddenSize);
  const cNorm = layers.layerNormWithoutAffine(context, c.hiddenSize, c.layerNormEps);
  const cQkv = qkv(layers, modulate(layers, cNorm, cm[0], cm[1]), `${cb}.attn`, c);

  const xb = `${prefix}.x_block`;
  const xm = modulation(layers, cSilu, `${xb}.adaLN_modulation.1`, dual ? 9 : 6, c.hiddenSize);
  const xNorm = layers.layerNormWithoutAffine(x, c.hiddenSize, c.layerNormEps);
  const xQkv = qkv(layers, modulate(layers, xNorm, xm[0], xm[1]), `${xb}.attn`, c);

  const joint = (i: number) => g.node('Concat', [cQkv[i], xQkv[i]], { axis: 1 });
  const attn = layers.attention(joint(0), joint(1), joint(2), c.heads, c.hiddenSize);
  const L = g.node('Shape', [context], { start: 1, end: 2 });
  const cAttn = g.node('Slice', [attn, g.ints('ctx_start', [0]), L, g.ints('seq_axis', [1])]);
  const xAttn = g.node('Slice', [attn, L, g.ints('seq_end', [Number.MAX_SAFE_INTEGER]), g.ints('seq_axis', [1])]);

  let xOut = layers.add(x, gated(layers, xm[2], projection(layers, xAttn, `${xb}.attn.proj`, c)));
  if (dual) {
    const q2 = qkv(layers, modulate(layers, xNorm, xm[6], xm[7]), `${xb}.attn2`, c);
    const self = layers.attention(q2[0], q2[1], q2[2], c.heads, c.hiddenSize);
    xOut = layers.add(xOut, gated(layers, xm[8], projection(layers, self, `${xb}.attn2.proj`, c)));
  }
  xOut = mlpUpdate(layers, xOut, xm[3], xm[4], xm[5], `${xb}.mlp`, c);

  if (preOnly) return { x: xOut, context: null };
  let cOut = layers.add(context, gated(layers, cm[2], projection(layers, cAttn, `${cb}.attn.proj`, c)));
  cOut = mlpUpdate(layers, cOut, cm[3], cm[4], cm[5], `${cb}.mlp`, c);
  return { x: xOut, context: cOut };
}

/**
 * adaLN modulation: Linear(SiLU(c)) [B, n·hidden] split into n chunks [B, 1, hidden] (broadcast over tokens).
 * @throws WeightShapeError when the projection does not have n·hidden rows.
 */
export function modulation(layers: Layers, cSilu: string, prefix: string, chunks: number, hidden: number): string[] {
  const g = layers.g;
  layers.expectShape(`${prefix}.weight`, [chunks * hidden, hidden]);
  const m = g.node('Unsqueeze', [layers.linear(cSilu, prefix), g.ints('token_axis', [1])]);
  return g.nodeOutputs('Split', [m, g.ints(`mod_split${chunks}`, new Array(chunks).fill(hidden))], { axis: -1 }, { outputs: chunks });
}

/** x·(1 + scale) + shift (mmdit.py `modulate`). */
export function modulate(layers: Layers, x: string, shift: string, scale: string): string {
  const g = layers.g;
  return g.node('Add', [g.node('Mul', [x, g.node('Add', [scale, g.floatConstant('one', [], [1])])]), shift]);
}

function gated(layers: Layers, gate: string, y: string): string {
  return layers.g.node('Mul', [gate, y]);
}

/** attn.qkv → q, k, v [B, T, hidden] (rows q, k, v), QK-normed per head when the model has QK-norm. */
function qkv(layers: Layers, x: string, prefix: string, c: MmditConfig): [string, string, string] {
  const g = layers.g;
  const C = c.hiddenSize;
  layers.expectShape(`${prefix}.qkv.weight`, [3 * C, C]);
  const [q, k, v] = g.nodeOutputs('Split', [layers.linear(x, `${prefix}.qkv`), g.ints('qkv_split', [C, C, C])], { axis: -1 }, { outputs: 3 });
  if (c.qkNorm === null) return [q, k, v];
  const perHead = (t: string, norm: string) => {
    layers.expectShape(`${prefix}.${norm}.weight`, [c.headDim]);
    const heads = g.node('Reshape', [t, g.ints('heads_shape', [0, 0, c.heads, c.headDim])]);
    return g.node('Reshape', [layers.rmsNorm(heads, `${prefix}.${norm}`, c.qkNormEps), g.ints('merge_heads', [0, 0, C])]);
  };
  return [perHead(q, 'ln_q'), perHead(k, 'ln_k'), v];
}

function projection(layers: Layers, x: string, prefix: string, c: MmditConfig): string {
  layers.expectShape(`${prefix}.weight`, [c.hiddenSize, c.hiddenSize]);
  return layers.linear(x, prefix);
}

/** s + gate·mlp(LayerNorm(s)·(1 + scale) + shift), mlp = fc1 → GELU(tanh) → fc2. */
function mlpUpdate(layers: Layers, s: string, shift: string, scale: string, gate: string, prefix: string, c: MmditConfig): string {
  layers.expectShape(`${prefix}.fc1.weight`, [c.mlpHiddenDim, c.hiddenSize]);
  layers.expectShape(`${prefix}.fc2.weight`, [c.hiddenSize, c.mlpHiddenDim]);
  const n = modulate(layers, layers.layerNormWithoutAffine(s, c.hiddenSize, c.layerNormEps), shift, scale);
  return layers.add(s, gated(layers, gate, layers.linear(layers.geluTanh(layers.linear(n, `${prefix}.fc1`)), `${prefix}.fc2`)));
}
