/**
 * LDM `SpatialTransformer` (comfy/ldm/modules/attention.py; diffusers `Transformer2DModel`, continuous input):
 *   h = GroupNorm(x) (eps 1e-6)  → proj_in (1×1 conv then tokens, or tokens then Linear when use_linear)
 *   → depth × BasicTransformerBlock:
 *        t += attn1(norm1 t)              self-attention
 *        t += attn2(norm2 t, context)     cross-attention on encoder_hidden_states
 *        t += ff(norm3 t)                 GEGLU feed-forward: ff.net.0.proj → value·gelu(gate) → ff.net.2
 *   → proj_out (Linear then NCHW, or NCHW then 1×1 conv) → + x
 * Attention is softmax(q·kᵀ/√d)·v per head, d = inner / heads; to_q/to_k/to_v carry no bias in SD
 * checkpoints (a bias is used when present), to_out.0 has one.
 */
import type { Layers } from '../layers';

export interface SpatialTransformerOptions {
  /** Transformer blocks (`transformer_blocks.0..depth−1`). */
  depth: number;
  heads: number;
  /** Width of encoder_hidden_states. */
  contextDim: number;
  useLinear: boolean;
  groups: number;
  /** eps of the input GroupNorm. */
  normEps: number;
  /** eps of norm1/norm2/norm3. */
  layerNormEps: number;
}

/**
 * The spatial transformer at `prefix` (e.g. `input_blocks.1.1`) over x [B, C, h, w] with context [B, T, ctx].
 * @throws WeightShapeError / MissingWeightError when its tensors do not fit C, the context width or the kind of
 *         projection; Error when `heads` does not divide the attention width.
 */
export function spatialTransformer(layers: Layers, x: string, context: string, prefix: string, channels: number, opts: SpatialTransformerOptions): string {
  layers.expectShape(`${prefix}.norm.weight`, [channels]);
  const inner = layers.w.shape(`${prefix}.proj_in.weight`)[0];
  layers.expectShape(`${prefix}.proj_in.weight`, opts.useLinear ? [inner, channels] : [inner, channels, 1, 1]);
  layers.expectShape(`${prefix}.proj_out.weight`, opts.useLinear ? [channels, inner] : [channels, inner, 1, 1]);

  const normed = layers.groupNorm(x, `${prefix}.norm`, opts.groups, opts.normEps);
  let tokens: string;
  let projected = normed;
  if (opts.useLinear) {
    tokens = layers.linear(layers.toTokens(normed), `${prefix}.proj_in`);
  } else {
    projected = layers.conv2d(normed, `${prefix}.proj_in`);
    tokens = layers.toTokens(projected);
  }
  for (let i = 0; i < opts.depth; i++) tokens = transformerBlock(layers, tokens, context, `${prefix}.transformer_blocks.${i}`, inner, opts);
  const out = opts.useLinear
    ? layers.fromTokens(layers.linear(tokens, `${prefix}.proj_out`), x)
    : layers.conv2d(layers.fromTokens(tokens, projected), `${prefix}.proj_out`);
  return layers.add(out, x);
}

/** BasicTransformerBlock over tokens [B, S, inner]. */
function transformerBlock(layers: Layers, t: string, context: string, prefix: string, inner: number, opts: SpatialTransformerOptions): string {
  let n = layers.layerNorm(t, `${prefix}.norm1`, opts.layerNormEps);
  t = layers.add(t, attention(layers, n, n, `${prefix}.attn1`, inner, inner, opts.heads));
  n = layers.layerNorm(t, `${prefix}.norm2`, opts.layerNormEps);
  t = layers.add(t, attention(layers, n, context, `${prefix}.attn2`, inner, opts.contextDim, opts.heads));
  n = layers.layerNorm(t, `${prefix}.norm3`, opts.layerNormEps);
  return layers.add(t, geglu(layers, n, `${prefix}.ff`, inner));
}

/** `CrossAttention` at `prefix`: queries from x [B, S, inner], keys/values from kv [B, L, kvDim]. */
function attention(layers: Layers, x: string, kv: string, prefix: string, inner: number, kvDim: number, heads: number): string {
  for (const p of ['to_q', 'to_k', 'to_v']) layers.expectShape(`${prefix}.${p}.weight`, [inner, p === 'to_q' ? inner : kvDim]);
  layers.expectShape(`${prefix}.to_out.0.weight`, [inner, inner]);
  const q = layers.linear(x, `${prefix}.to_q`);
  const k = layers.linear(kv, `${prefix}.to_k`);
  const v = layers.linear(kv, `${prefix}.to_v`);
  return layers.linear(layers.attention(q, k, v, heads, inner), `${prefix}.to_out.0`);
}

/** FeedForward with GEGLU (LDM `FeedForward(glu=True)`): net.0.proj → [value | gate] → value·gelu(gate) → net.2. */
function geglu(layers: Layers, x: string, prefix: string, inner: number): string {
  const g = layers.g;
  const [twice] = layers.expectShape(`${prefix}.net.0.proj.weight`, [-1, inner]);
  if (twice % 2 !== 0) throw new Error(`${layers.w.where}: ${prefix}.net.0.proj has ${twice} outputs, GEGLU needs an even count (value and gate halves)`);
  const hidden = twice / 2;
  layers.expectShape(`${prefix}.net.2.weight`, [inner, hidden]);
  const proj = layers.linear(x, `${prefix}.net.0.proj`);
  const [value, gate] = g.nodeOutputs('Split', [proj, g.ints('geglu_split', [hidden, hidden])], { axis: -1 }, { outputs: 2 });
  return layers.linear(g.node('Mul', [value, layers.gelu(gate)]), `${prefix}.net.2`);
}
