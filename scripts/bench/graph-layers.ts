/**
 * Stable-Diffusion-style UNet layers emitted into an `OnnxGraphBuilder` (scripts/tiny-model): 3×3
 * convolutions, GroupNorm, SiLU, residual blocks with a timestep embedding, multi-head self-attention
 * and cross-attention. Each layer draws its weights from one seeded uniform generator, so the same
 * call sequence always gives the same bytes.
 *
 * Shapes use NCHW feature maps: x float32 [N, C, h, w]; text states float32 [N, T, H]. All values are
 * names of float32 values in the graph. Weight scales follow PyTorch's default initialisation
 * (uniform ±1/√fan_in, Kaiming-uniform with a = √5), which keeps activations O(1); GroupNorm
 * renormalises after every block, so nothing grows over depth.
 *
 * Layer definitions: diffusers `ResnetBlock2D`, `Attention`, `Upsample2D`, `Downsample2D`
 * (github.com/huggingface/diffusers, src/diffusers/models).
 */
import type { OnnxGraphBuilder } from '../tiny-model/onnx-graph-builder';
import { createMulberry32 } from '../tiny-model/prng';

/** GroupNorm group count (SD uses 32; our narrower channels use fewer groups of the same kind). */
export const BENCH_NORM_GROUPS = 8;

/** GroupNorm epsilon (diffusers ResnetBlock2D uses 1e-6; attention norms 1e-6 too). */
const NORM_EPSILON = 1e-6;

/** Emits layers into one graph, drawing deterministic weights from `seed`. */
export class GraphLayers {
  private readonly uniform: () => number;

  constructor(
    readonly g: OnnxGraphBuilder,
    seed: number,
  ) {
    this.uniform = createMulberry32(seed);
  }

  /** A float32 weight of `dims`, uniform in ±bound (deterministic); returns its value name. */
  weight(hint: string, dims: readonly number[], bound: number): string {
    const count = dims.reduce((a, b) => a * b, 1);
    const values = new Float32Array(count);
    for (let i = 0; i < count; i++) values[i] = (this.uniform() * 2 - 1) * bound;
    return this.g.floatConstant(this.g.fresh(hint), dims, values);
  }

  /** A float32 constant filled with `value`. */
  filled(hint: string, dims: readonly number[], value: number): string {
    const count = dims.reduce((a, b) => a * b, 1);
    return this.g.floatConstant(this.g.fresh(hint), dims, new Float32Array(count).fill(value));
  }

  /**
   * Conv2d, kernel k×k, padding k/2, with bias: [N, cIn, h, w] → [N, cOut, h/stride, w/stride].
   * @param scale multiplies PyTorch's default bound (a small value gives a near-zero output layer).
   */
  conv(x: string, cIn: number, cOut: number, kernel = 3, stride = 1, scale = 1): string {
    const bound = scale / Math.sqrt(cIn * kernel * kernel);
    const w = this.weight('conv_w', [cOut, cIn, kernel, kernel], bound);
    const b = this.weight('conv_b', [cOut], bound);
    const pad = Math.floor(kernel / 2);
    return this.g.node('Conv', [x, w, b], { kernel_shape: [kernel, kernel], pads: [pad, pad, pad, pad], strides: [stride, stride] });
  }

  /** x·W + b on the last axis: [..., cIn] → [..., cOut]; no bias when `bias` is false (attention q/k/v). */
  linear(x: string, cIn: number, cOut: number, bias = true): string {
    const bound = 1 / Math.sqrt(cIn);
    const y = this.g.node('MatMul', [x, this.weight('linear_w', [cIn, cOut], bound)]);
    return bias ? this.g.node('Add', [y, this.weight('linear_b', [cOut], bound)]) : y;
  }

  /** SiLU(x) = x·σ(x). */
  silu(x: string): string {
    return this.g.node('Mul', [x, this.g.node('Sigmoid', [x])]);
  }

  /**
   * GroupNorm over [N, C, h, w] with BENCH_NORM_GROUPS groups and per-channel affine (γ = 1, β = 0),
   * written the way PyTorch's ONNX exporter writes it below opset 18: Reshape [N, G, −1] →
   * InstanceNormalization → Reshape back → Mul γ → Add β.
   */
  groupNorm(x: string, channels: number): string {
    const G = BENCH_NORM_GROUPS;
    const grouped = this.g.node('Reshape', [x, this.g.int64Constant(this.g.fresh('gn_shape'), [3], [0, G, -1])]);
    const normed = this.g.node('InstanceNormalization', [grouped, this.filled('gn_one', [G], 1), this.filled('gn_zero', [G], 0)], {
      epsilon: NORM_EPSILON,
    });
    const back = this.g.node('Reshape', [normed, this.g.node('Shape', [x])]);
    const gamma = this.filled('gn_gamma', [channels, 1, 1], 1);
    const beta = this.filled('gn_beta', [channels, 1, 1], 0);
    return this.g.node('Add', [this.g.node('Mul', [back, gamma]), beta]);
  }

  /**
   * diffusers ResnetBlock2D: h = conv(SiLU(GN(x))) + proj(SiLU(temb)); h = conv(SiLU(GN(h)));
   * out = shortcut(x) + h (1×1 conv shortcut when channels change).
   * @param temb float32 [steps, tembDim] timestep embedding (steps = 1 or N).
   */
  resBlock(x: string, cIn: number, cOut: number, temb: string, tembDim: number): string {
    let h = this.conv(this.silu(this.groupNorm(x, cIn)), cIn, cOut);
    const t = this.linear(this.silu(temb), tembDim, cOut);
    h = this.g.node('Add', [h, this.g.node('Reshape', [t, this.g.int64Constant(this.g.fresh('temb_shape'), [4], [-1, cOut, 1, 1])])]);
    h = this.conv(this.silu(this.groupNorm(h, cOut)), cOut, cOut);
    const shortcut = cIn === cOut ? x : this.conv(x, cIn, cOut, 1);
    return this.g.node('Add', [shortcut, h]);
  }

  /**
   * Multi-head attention of tokens [N, L, C] over context [N, S, D] (self-attention when context is the
   * tokens): softmax(q·kᵀ/√d)·v per head, then an output projection. Returns [N, L, C].
   */
  attention(tokens: string, channels: number, context: string, contextDim: number, heads: number): string {
    const d = channels / heads;
    const split = (v: string, perm: number[]) =>
      this.g.node('Transpose', [this.g.node('Reshape', [v, this.g.int64Constant(this.g.fresh('heads_shape'), [4], [0, -1, heads, d])])], { perm });
    const q = split(this.linear(tokens, channels, channels, false), [0, 2, 1, 3]); // [N, heads, L, d]
    const kT = split(this.linear(context, contextDim, channels, false), [0, 2, 3, 1]); // [N, heads, d, S]
    const v = split(this.linear(context, contextDim, channels, false), [0, 2, 1, 3]); // [N, heads, S, d]
    const scores = this.g.node('Mul', [this.g.node('MatMul', [q, kT]), this.filled('attn_scale', [], 1 / Math.sqrt(d))]);
    const weighted = this.g.node('MatMul', [this.g.node('Softmax', [scores], { axis: -1 }), v]); // [N, heads, L, d]
    const merged = this.g.node('Reshape', [
      this.g.node('Transpose', [weighted], { perm: [0, 2, 1, 3] }),
      this.g.int64Constant(this.g.fresh('merge_shape'), [3], [0, -1, channels]),
    ]);
    return this.linear(merged, channels, channels);
  }

  /**
   * A transformer-style spatial block on [N, C, h, w]: GroupNorm, to tokens [N, h·w, C], self-attention
   * and cross-attention to `context` (each with a residual), back to [N, C, h, w], plus the input.
   */
  spatialTransformer(x: string, channels: number, context: string, contextDim: number, heads: number): string {
    const normed = this.groupNorm(x, channels);
    const flat = this.g.node('Reshape', [normed, this.g.int64Constant(this.g.fresh('flat_shape'), [3], [0, channels, -1])]);
    let tokens = this.g.node('Transpose', [flat], { perm: [0, 2, 1] }); // [N, L, C]
    tokens = this.g.node('Add', [tokens, this.attention(tokens, channels, tokens, channels, heads)]);
    tokens = this.g.node('Add', [tokens, this.attention(tokens, channels, context, contextDim, heads)]);
    const back = this.g.node('Reshape', [this.g.node('Transpose', [tokens], { perm: [0, 2, 1] }), this.g.node('Shape', [x])]);
    return this.g.node('Add', [x, back]);
  }

  /** Nearest-neighbour ×2 upsampling (diffusers Upsample2D before its conv). */
  upsample2x(x: string): string {
    return this.g.node('Resize', [x, '', this.g.floatConstant(this.g.fresh('up_scales'), [4], [1, 1, 2, 2])], {
      mode: 'nearest',
      coordinate_transformation_mode: 'asymmetric',
      nearest_mode: 'floor',
    });
  }

  /**
   * Sinusoidal timestep embedding (DDPM / diffusers `get_timestep_embedding`, flip_sin_to_cos):
   * t float32 [steps] → [steps, dim] = [cos(t·f_k), sin(t·f_k)], f_k = 10000^(−k/(dim/2)).
   */
  timestepEmbedding(t: string, dim: number): string {
    const half = dim / 2;
    const freqs = Array.from({ length: half }, (_, k) => Math.exp((-Math.log(10000) * k) / half));
    const column = this.g.node('Unsqueeze', [t, this.g.int64Constant(this.g.fresh('temb_axis'), [1], [1])]);
    const args = this.g.node('Mul', [column, this.g.floatConstant(this.g.fresh('temb_freqs'), [1, half], freqs)]);
    return this.g.node('Concat', [this.g.node('Cos', [args]), this.g.node('Sin', [args])], { axis: 1 });
  }
}
