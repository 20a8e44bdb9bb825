/**
 * PyTorch layers emitted into an OnnxGraph with their weights taken from a WeightSet, by module path:
 * `layers.linear(x, 'input_blocks.1.1.proj_in')` uses `…proj_in.weight` / `…proj_in.bias` exactly as the
 * checkpoint stores them (PyTorch layouts: Linear [out, in], Conv2d [out, in, kh, kw]); layout changes the
 * ONNX ops need (the Linear transpose) are graph nodes over the initializer, which onnxruntime folds once at
 * session creation. So every initializer holds one checkpoint tensor under its key, and a weight patch
 * (LoRA: W += scale · up·down) works on the checkpoint's own layout.
 *
 * Values are names of tensors in the graph; feature maps are NCHW, token sequences [B, T, C].
 * Semantics follow torch.nn (Linear, Conv2d, GroupNorm, LayerNorm, SiLU, GELU) and diffusers'
 * `Attention` (softmax(q·kᵀ/√d)·v per head).
 *
 * Float16 graphs: GroupNorm statistics and the standard attention's softmax run in float32 (cast up and
 * back), as onnxruntime's own fused kernels do; everything else computes in the graph's float type.
 */
import { DataType, MS_DOMAIN, type AttributeValue, type OnnxGraph } from './onnx-graph';
import { WeightShapeError, type WeightSet } from '../weights/weight-set';
import type { MatMulNBitsWeight } from '../weights/ggml/matmul-nbits';
import { float32ToFloat16 } from '../onnx/float16';
import { keepableGgmlType, keptGgmlTypes, readMatMulNBits } from './quantized-linear';

/** How attention is emitted. */
export type AttentionKind =
  /** onnxruntime's com.microsoft MultiHeadAttention (fused, memory-efficient kernels on CPU and CUDA). */
  | 'contrib'
  /** Standard ops: MatMul, Softmax, MatMul (any ONNX runtime). */
  | 'standard';

export interface LayerOptions {
  attention?: AttentionKind;
  /**
   * Emit MatMulNBits over the stored blocks for Linear weights kept in GGUF as Q4_0 / Q8_0 (quantized-linear.ts):
   * true = both types, false = none. Default: GGUF_KEEP_QUANTIZED (auto: Q4_0 only, in float32 graphs only).
   */
  keepQuantized?: boolean;
}

export class Layers {
  readonly attentionKind: AttentionKind;
  /** ggml types whose Linear weights are kept quantized (quantized-linear.ts keptGgmlTypes). */
  readonly keptTypes: ReadonlySet<string>;

  constructor(
    readonly g: OnnxGraph,
    readonly w: WeightSet,
    opts: LayerOptions = {},
  ) {
    this.attentionKind = opts.attention ?? 'contrib';
    this.keptTypes = keptGgmlTypes(opts.keepQuantized, g.floatType);
  }

  /** The initializer holding checkpoint tensor `name` (declared once, read at save time). */
  param(name: string): string {
    const shape = this.w.shape(name);
    return this.g.weight(name, shape, () => this.w.read(name));
  }

  /** The stored shape of `name`, checked against `expected` (−1 = any). @throws WeightShapeError */
  expectShape(name: string, expected: readonly number[]): number[] {
    const shape = this.w.shape(name);
    if (shape.length !== expected.length || shape.some((d, i) => expected[i] !== -1 && d !== expected[i])) {
      throw new WeightShapeError(name, this.w.where, shape, expected);
    }
    return shape;
  }

  /**
   * torch.nn.Linear: x [..., in] → [..., out]; bias when `${prefix}.bias` exists. A Q4_0 / Q8_0 GGUF weight of a
   * kept type (`keptTypes`) becomes com.microsoft.MatMulNBits (accuracy_level 1: A stays float32, float32
   * accumulation) over its re-packed blocks, the packed uint8 initializer under the checkpoint key and the
   * per-block scales under `<key>:scales`; the weight values are ggml's exactly, only the summation order differs.
   */
  linear(x: string, prefix: string): string {
    const name = `${prefix}.weight`;
    const kept = this.w.has(name) ? keepableGgmlType(this.w.ref(name)) : undefined;
    if (kept && this.keptTypes.has(kept)) return this.addBias(this.quantizedMatMul(x, name), prefix);
    const weight = this.param(name);
    const wt = this.g.node('Transpose', [weight], { perm: [1, 0] });
    return this.addBias(this.g.node('MatMul', [x, wt]), prefix);
  }

  private addBias(y: string, prefix: string): string {
    return this.w.has(`${prefix}.bias`) ? this.g.node('Add', [y, this.param(`${prefix}.bias`)]) : y;
  }

  /** x · Wᵀ with W kept as MatMulNBits blocks (see linear). */
  private quantizedMatMul(x: string, name: string): string {
    const ref = this.w.ref(name);
    const [n, k] = ref.shape;
    const blockSize = 32;
    const bits = keepableGgmlType(ref) === 'Q4_0' ? 4 : 8;
    const blocks = k / blockSize;
    // Both initializers come from one read; the packed result is dropped once both have been written.
    let packed: Promise<MatMulNBitsWeight> | undefined;
    let pending = 2;
    const take = async <T>(pick: (p: MatMulNBitsWeight) => T): Promise<T> => {
      packed ??= readMatMulNBits(ref);
      const p = await packed;
      if (--pending === 0) packed = undefined;
      return pick(p);
    };
    const g = this.g;
    const b = g.rawWeight(name, DataType.UINT8, [n, blocks, (blockSize * bits) / 8], () => take((p) => p.b));
    const scaleType = g.floatType === 'float16' ? DataType.FLOAT16 : DataType.FLOAT;
    const scales = g.rawWeight(`${name}:scales`, scaleType, [n, blocks], () =>
      take((p) => {
        if (scaleType === DataType.FLOAT) return new Uint8Array(p.scales.buffer, p.scales.byteOffset, p.scales.byteLength);
        const h = float32ToFloat16(p.scales);
        return new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
      }),
    );
    return g.node('MatMulNBits', [x, b, scales], { K: k, N: n, bits, block_size: blockSize, accuracy_level: 1 }, { domain: MS_DOMAIN });
  }

  /** [out, in] of a Linear, or [out, in] of a 1×1 Conv used as one. */
  linearShape(prefix: string): { out: number; in: number } {
    const s = this.w.shape(`${prefix}.weight`);
    return { out: s[0], in: s[1] };
  }

  /**
   * torch.nn.Conv2d: x [N, in, h, w] → [N, out, h', w'].
   * @param opts.pads [top, left, bottom, right]; default kernel/2 on every side (PyTorch `padding=k//2`).
   */
  conv2d(x: string, prefix: string, opts: { stride?: number; pads?: [number, number, number, number] } = {}): string {
    const shape = this.w.shape(`${prefix}.weight`);
    if (shape.length !== 4) throw new WeightShapeError(`${prefix}.weight`, this.w.where, shape, [-1, -1, -1, -1]);
    const [kh, kw] = [shape[2], shape[3]];
    const stride = opts.stride ?? 1;
    const pads = opts.pads ?? [Math.floor(kh / 2), Math.floor(kw / 2), Math.floor(kh / 2), Math.floor(kw / 2)];
    const inputs = [x, this.param(`${prefix}.weight`)];
    if (this.w.has(`${prefix}.bias`)) inputs.push(this.param(`${prefix}.bias`));
    return this.g.node('Conv', inputs, { kernel_shape: [kh, kw], strides: [stride, stride], pads });
  }

  /**
   * torch.nn.GroupNorm over [N, C, …]: statistics per (sample, group), then the per-channel affine
   * `${prefix}.weight` / `${prefix}.bias` [C]. Written as Reshape [N, G, −1] → InstanceNormalization →
   * Reshape back (the form PyTorch's exporter emits and onnxruntime fuses).
   */
  groupNorm(x: string, prefix: string, groups: number, eps: number): string {
    const C = this.w.shape(`${prefix}.weight`)[0];
    if (C % groups !== 0) throw new WeightShapeError(`${prefix}.weight`, this.w.where, [C], [groups * Math.ceil(C / groups)]);
    const g = this.g;
    const upcast = g.floatType === 'float16';
    const xin = upcast ? g.node('Cast', [x], { to: DataType.FLOAT }) : x;
    const grouped = g.node('Reshape', [xin, g.ints('gn_shape', [0, groups, -1])]);
    const ones = upcast ? g.float32Constant('gn_one', [groups], new Float32Array(groups).fill(1)) : g.floatConstant('gn_one', [groups], new Float32Array(groups).fill(1));
    const zeros = upcast ? g.float32Constant('gn_zero', [groups], new Float32Array(groups)) : g.floatConstant('gn_zero', [groups], new Float32Array(groups));
    const normed = g.node('InstanceNormalization', [grouped, ones, zeros], { epsilon: eps });
    let y = g.node('Reshape', [normed, g.node('Shape', [xin])]);
    if (upcast) y = g.node('Cast', [y], { to: DataType.FLOAT16 });
    const affineShape = g.ints('gn_affine', [C, 1, 1]);
    const gamma = g.node('Reshape', [this.param(`${prefix}.weight`), affineShape]);
    const beta = g.node('Reshape', [this.param(`${prefix}.bias`), affineShape]);
    return g.node('Add', [g.node('Mul', [y, gamma]), beta]);
  }

  /** torch.nn.LayerNorm over the last axis with `${prefix}.weight` / `.bias` (bias optional). */
  layerNorm(x: string, prefix: string, eps: number): string {
    const inputs = [x, this.param(`${prefix}.weight`)];
    if (this.w.has(`${prefix}.bias`)) inputs.push(this.param(`${prefix}.bias`));
    return this.g.node('LayerNormalization', inputs, { axis: -1, epsilon: eps });
  }

  /**
   * torch.nn.LayerNorm(channels, elementwise_affine=False) over the last axis (the DiTs' adaLN norms, whose
   * scale and shift come from the conditioning). Statistics in float32 in float16 graphs.
   */
  layerNormWithoutAffine(x: string, channels: number, eps: number): string {
    const g = this.g;
    const upcast = g.floatType === 'float16';
    const xin = upcast ? g.node('Cast', [x], { to: DataType.FLOAT }) : x;
    const ones = g.float32Constant('ln_one', [channels], new Float32Array(channels).fill(1));
    const y = g.node('LayerNormalization', [xin, ones], { axis: -1, epsilon: eps });
    return upcast ? g.node('Cast', [y], { to: DataType.FLOAT16 }) : y;
  }

  /**
   * RMSNorm over the last axis with `${prefix}.weight` (diffusers `RMSNorm`, ComfyUI mmdit.py `RMSNorm`):
   * x·rsqrt(mean(x²) + eps), cast back to the graph's type, times the weight. The mean and rsqrt compute in
   * float32 in float16 graphs, as diffusers computes the variance.
   * @param param the weight's name under `prefix` (BFL FLUX.1 calls it `scale`).
   */
  rmsNorm(x: string, prefix: string, eps: number, param = 'weight'): string {
    const g = this.g;
    const upcast = g.floatType === 'float16';
    const xin = upcast ? g.node('Cast', [x], { to: DataType.FLOAT }) : x;
    const meanSquare = g.node('ReduceMean', [g.node('Mul', [xin, xin])], { axes: [-1], keepdims: 1 });
    const inv = g.node('Reciprocal', [g.node('Sqrt', [g.node('Add', [meanSquare, g.float32Constant('rms_eps', [], [eps])])])]);
    let y = g.node('Mul', [xin, inv]);
    if (upcast) y = g.node('Cast', [y], { to: DataType.FLOAT16 });
    return g.node('Mul', [y, this.param(`${prefix}.${param}`)]);
  }

  /** SiLU(x) = x·σ(x). */
  silu(x: string): string {
    return this.g.node('Mul', [x, this.g.node('Sigmoid', [x])]);
  }

  /** GELU, exact (erf) form: 0.5·x·(1 + erf(x/√2)) (torch.nn.GELU()). */
  gelu(x: string): string {
    const g = this.g;
    const erf = g.node('Erf', [g.node('Mul', [x, g.floatConstant('inv_sqrt2', [], [Math.SQRT1_2])])]);
    return g.node('Mul', [g.node('Mul', [x, g.floatConstant('half', [], [0.5])]), g.node('Add', [erf, g.floatConstant('one', [], [1])])]);
  }

  /** GELU, tanh approximation (torch.nn.GELU(approximate='tanh')): 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))). */
  geluTanh(x: string): string {
    const g = this.g;
    const x3 = g.node('Mul', [g.node('Mul', [x, x]), x]);
    const inner = g.node('Mul', [g.node('Add', [x, g.node('Mul', [x3, g.floatConstant('c', [], [0.044715])])]), g.floatConstant('k', [], [Math.sqrt(2 / Math.PI)])]);
    return g.node('Mul', [g.node('Mul', [x, g.floatConstant('half', [], [0.5])]), g.node('Add', [g.node('Tanh', [inner]), g.floatConstant('one', [], [1])])]);
  }

  /** quick_gelu (OpenAI CLIP): x·σ(1.702x). */
  quickGelu(x: string): string {
    const g = this.g;
    return g.node('Mul', [x, g.node('Sigmoid', [g.node('Mul', [x, g.floatConstant('qg', [], [1.702])])])]);
  }

  /** [N, C, h, w] → [N, h·w, C] (tokens for a transformer). */
  toTokens(x: string): string {
    const flat = this.g.node('Reshape', [x, this.g.ints('tok_shape', [0, 0, -1])]);
    return this.g.node('Transpose', [flat], { perm: [0, 2, 1] });
  }

  /** [N, h·w, C] → the NCHW shape of `like`. */
  fromTokens(tokens: string, like: string): string {
    const chw = this.g.node('Transpose', [tokens], { perm: [0, 2, 1] });
    return this.g.node('Reshape', [chw, this.g.node('Shape', [like])]);
  }

  /** Nearest-neighbour ×2 upsampling of [N, C, h, w] (torch F.interpolate(scale_factor=2, mode='nearest')). */
  upsampleNearest2x(x: string): string {
    const g = this.g;
    return g.node('Resize', [x, '', g.float32Constant('scales', [4], [1, 1, 2, 2])], {
      mode: 'nearest',
      coordinate_transformation_mode: 'asymmetric',
      nearest_mode: 'floor',
    });
  }

  /**
   * Multi-head attention of projected q [B, S, C], k and v [B, L, C] with `heads` heads of d = C/heads each:
   * softmax(scale·q·kᵀ + bias)·v per head, heads concatenated → [B, S, C].
   * @param opts.scale the score scale; default 1/√d (diffusers, CLIP). T5 uses 1 (its init folds the scale in).
   * @param opts.bias an additive score bias [B or 1, heads or 1, S, L] in the graph's float type (T5's relative
   *        position bias, a padding mask as large negative values): com.microsoft MultiHeadAttention's
   *        `attention_bias` input; the standard path adds it to the scores in float32.
   */
  attention(q: string, k: string, v: string, heads: number, channels: number, opts: { scale?: number; bias?: string } = {}): string {
    const g = this.g;
    if (channels % heads !== 0) throw new Error(`attention: ${channels} channels do not split into ${heads} heads`);
    const d = channels / heads;
    if (this.attentionKind === 'contrib') {
      const attrs: Record<string, AttributeValue> = { num_heads: heads };
      if (opts.scale !== undefined) attrs.scale = { float: opts.scale };
      const inputs = opts.bias ? [q, k, v, '', '', opts.bias] : [q, k, v];
      return g.node('MultiHeadAttention', inputs, attrs, { domain: MS_DOMAIN });
    }
    const split = g.ints('heads_shape', [0, 0, heads, d]);
    const qh = g.node('Transpose', [g.node('Reshape', [q, split])], { perm: [0, 2, 1, 3] });
    const kh = g.node('Transpose', [g.node('Reshape', [k, split])], { perm: [0, 2, 3, 1] });
    const vh = g.node('Transpose', [g.node('Reshape', [v, split])], { perm: [0, 2, 1, 3] });
    const scale = opts.scale ?? 1 / Math.sqrt(d);
    let scores = g.node('MatMul', [qh, kh]);
    if (scale !== 1) scores = g.node('Mul', [scores, g.floatConstant('attn_scale', [], [scale])]);
    const upcast = g.floatType === 'float16';
    if (upcast) scores = g.node('Cast', [scores], { to: DataType.FLOAT });
    if (opts.bias) scores = g.node('Add', [scores, upcast ? g.node('Cast', [opts.bias], { to: DataType.FLOAT }) : opts.bias]);
    let probs = g.node('Softmax', [scores], { axis: -1 });
    if (upcast) probs = g.node('Cast', [probs], { to: DataType.FLOAT16 });
    const out = g.node('Transpose', [g.node('MatMul', [probs, vh])], { perm: [0, 2, 1, 3] });
    return g.node('Reshape', [out, g.ints('merge_heads', [0, 0, channels])]);
  }

  /** x + y. */
  add(x: string, y: string): string {
    return this.g.node('Add', [x, y]);
  }

  /** Concatenate along `axis`. */
  concat(values: readonly string[], axis: number): string {
    return this.g.node('Concat', values, { axis });
  }

  /**
   * Causal (decoder-style) self-attention of projected q, k, v [B, T, C] with `heads` heads of C/heads each:
   * position i attends to positions 0..i only, softmax(q·kᵀ/√d + M)·v per head with M[i][j] = −∞ for j > i,
   * heads concatenated → [B, T, C] (the text transformer of CLIP: transformers `_create_4d_causal_attention_mask`,
   * open_clip `build_causal_mask`). T is read at run time, so one graph serves every sequence length.
   * - 'contrib': MultiHeadAttention with `unidirectional` = 1. onnxruntime's CPU kernel (float32 only) adds
   *   mask_filter_value −10000 above the diagonal, whose exp underflows to the same exact zeros as −∞ for any
   *   finite scores; CUDA runs its causal flash / memory-efficient kernels.
   * - 'standard': future positions are set to −∞ by a Where over a [T, T] mask built from Range, softmax in float32.
   */
  causalSelfAttention(q: string, k: string, v: string, heads: number, channels: number): string {
    const g = this.g;
    if (channels % heads !== 0) throw new Error(`attention: ${channels} channels do not split into ${heads} heads`);
    if (this.attentionKind === 'contrib') {
      return g.node('MultiHeadAttention', [q, k, v], { num_heads: heads, unidirectional: 1 }, { domain: MS_DOMAIN });
    }
    const d = channels / heads;
    const split = g.ints('heads_shape', [0, 0, heads, d]);
    const qh = g.node('Transpose', [g.node('Reshape', [q, split])], { perm: [0, 2, 1, 3] });
    const kh = g.node('Transpose', [g.node('Reshape', [k, split])], { perm: [0, 2, 3, 1] });
    const vh = g.node('Transpose', [g.node('Reshape', [v, split])], { perm: [0, 2, 1, 3] });
    let scores = g.node('Mul', [g.node('MatMul', [qh, kh]), g.floatConstant('attn_scale', [], [1 / Math.sqrt(d)])]);
    const upcast = g.floatType === 'float16';
    if (upcast) scores = g.node('Cast', [scores], { to: DataType.FLOAT });
    // future[i][j] = j > i, for i, j in 0..T−1.
    const T = g.node('Squeeze', [g.node('Shape', [q], { start: 1, end: 2 }), g.ints('axis0', [0])]);
    const positions = g.node('Range', [g.int64Constant('zero', [], [0]), T, g.int64Constant('one', [], [1])]);
    const future = g.node('Greater', [g.node('Unsqueeze', [positions, g.ints('axis0', [0])]), g.node('Unsqueeze', [positions, g.ints('axis1', [1])])]);
    scores = g.node('Where', [future, g.float32Constant('minus_inf', [], [-Infinity]), scores]);
    let probs = g.node('Softmax', [scores], { axis: -1 });
    if (upcast) probs = g.node('Cast', [probs], { to: DataType.FLOAT16 });
    const out = g.node('Transpose', [g.node('MatMul', [probs, vh])], { perm: [0, 2, 1, 3] });
    return g.node('Reshape', [out, g.ints('merge_heads', [0, 0, channels])]);
  }

  /**
   * Nearest-neighbour upsampling of [N, C, h, w] to the spatial size of `like` [N', C', H, W]
   * (torch `F.interpolate(x, size=like.shape[2:], mode='nearest')`, which LDM's `Upsample(output_shape=…)` and
   * diffusers' `Upsample2D(output_size=…)` use so that odd sizes meet their skip connection). For H = 2h it is
   * exactly ×2; for H = 2h − 1 source row ⌊i·h/H⌋ = ⌊i/2⌋ as well.
   */
  upsampleNearestLike(x: string, like: string): string {
    const g = this.g;
    const nc = g.node('Slice', [g.node('Shape', [x]), g.ints('nc_start', [0]), g.ints('nc_end', [2])]);
    const hw = g.node('Slice', [g.node('Shape', [like]), g.ints('hw_start', [2]), g.ints('hw_end', [4])]);
    const sizes = g.node('Concat', [nc, hw], { axis: 0 });
    return g.node('Resize', [x, '', '', sizes], {
      mode: 'nearest',
      coordinate_transformation_mode: 'asymmetric',
      nearest_mode: 'floor',
    });
  }
}
