/**
 * The T5 encoder (transformers `T5EncoderModel`, as FLUX.1 and Stable Diffusion 3.x use T5 v1.1 XXL) as an ONNX
 * graph built from a checkpoint's own tensors (canonical names: checkpoints/detect/t5-config.ts):
 *
 *   x = shared[input_ids]                                                  (no position embedding, no scaling)
 *   bias[h, i, j] = relative_attention_bias[bucket(j − i), h]              (block 0's table, used by every block)
 *   each block:  x += o(attention(q(n), k(n), v(n)))      n = T5LayerNorm(x), scores = q·kᵀ + bias (NO 1/√d)
 *                x += wo(act(wi_0(n)) · wi_1(n))          n = T5LayerNorm(x)   (ungated: wo(act(wi(n))))
 *   last_hidden_state = T5LayerNorm(x)  (final_layer_norm)
 *
 * T5LayerNorm is an RMS norm: x / √(mean(x²) + ε) · weight, no mean subtraction, no bias, statistics in float32
 * (transformers `T5LayerNorm`). The buckets are transformers' `_relative_position_bucket` (bidirectional), computed
 * here in float32 arithmetic exactly as torch does it (relativePositionBucket) into a table over the relative
 * positions −D..D (D = relative_attention_max_distance: every larger distance shares the last bucket), which the
 * graph indexes with j − i clamped to ±D — so one graph serves every sequence length.
 *
 * Attention mask: the FLUX.1 / SD 3 pipelines pass none (pad positions are attended). With `attentionMask` the graph
 * takes `attention_mask` int64 [batch, sequence] (1 = token, 0 = padding) and adds the lowest finite value of the
 * bias's type to the scores of padding keys, as transformers' extended mask does.
 *
 * Float16 graphs (GPU providers): T5 v1.1 overflows float16 in the feed-forward and the residual stream (the
 * known upstream issue; transformers keeps `wo` in float32 through `_keep_in_fp32_modules = ["wo"]`, and with it
 * the residual stream after the first feed-forward). Here the residual stream, every RMS-norm statistic, the
 * attention softmax with its bias, the feed-forward activation and product and `wo` (its initializer stored in
 * float32) compute in float32; the embedding table, q/k/v/o and wi_0/wi_1 (initializers and MatMuls) are
 * float16, the norm's weight multiply too (transformers casts the normalised values to the weight's dtype).
 *
 * I/O: in `input_ids` int64 [batch, sequence] (+ `attention_mask` int64 [batch, sequence] when asked for); out
 * `last_hidden_state` [batch, sequence, d_model] in the graph's float type.
 * Source: transformers `models/t5/modeling_t5.py` (T5LayerNorm, T5Attention, T5DenseGatedActDense, T5Stack).
 */
import { T5_NAMES, type T5Activation, type T5EncoderConfig } from '../checkpoints/detect/t5-config';
import type { WeightSet } from '../weights/weight-set';
import { Layers, type AttentionKind } from './layers';
import { DataType, OnnxGraph, type FloatType } from './onnx-graph';

export interface T5EncoderGraphOptions {
  /** Compute type. Default 'float32'. 'float16' is for GPU providers (see the module docstring for what stays float32). */
  floatType?: FloatType;
  /** How attention is emitted (layers.ts): 'contrib' passes the bias as MultiHeadAttention's `attention_bias` with scale 1. Default 'contrib'. */
  attention?: AttentionKind;
  /** Add the `attention_mask` input (1 = attend, 0 = padding key). Default false (the diffusion pipelines attend pads). */
  attentionMask?: boolean;
}

/** Graph input / output names. */
export const T5_ENCODER_IO = {
  inputIds: 'input_ids',
  attentionMask: 'attention_mask',
  lastHiddenState: 'last_hidden_state',
} as const;

/** Lowest finite float32 / float16 (torch.finfo(dtype).min), the additive mask of a padding key. */
const LOWEST = { float32: -3.4028234663852886e38, float16: -65504 } as const;

/**
 * transformers `T5Attention._relative_position_bucket` for one relative position (memory − query), in torch's
 * float32 arithmetic: with n = numBuckets/2 per direction when bidirectional (positive positions offset by n) and
 * maxExact = n/2, |p| < maxExact is its own bucket, larger distances
 * maxExact + trunc(f32(f32(log(f32(|p|/maxExact)) / f32(ln(maxDistance/maxExact))) · (n − maxExact))), capped at n − 1.
 * Every `Math.fround` is one float32 rounding of torch's; float32 division and log are correctly rounded here, and
 * torch's agree at the only exact-integer points (powers of two for T5's 32 buckets / 128), which decide buckets.
 * @param relativePosition an integer.
 */
export function relativePositionBucket(relativePosition: number, numBuckets: number, maxDistance: number, bidirectional = true): number {
  const f32 = Math.fround;
  let bucket = 0;
  let n = numBuckets;
  let p = relativePosition;
  if (bidirectional) {
    n = Math.floor(n / 2);
    if (p > 0) bucket += n;
    p = Math.abs(p);
  } else {
    p = -Math.min(p, 0);
  }
  const maxExact = Math.floor(n / 2);
  if (p < maxExact) return bucket + p;
  const scaled = f32(f32(f32(Math.log(f32(p / maxExact))) / f32(Math.log(maxDistance / maxExact))) * (n - maxExact));
  return bucket + Math.min(maxExact + Math.trunc(scaled), n - 1);
}

/**
 * The bidirectional bucket of every relative position −D..D (index p + D), D = maxDistance: positions beyond ±D
 * share the buckets of ±D (the logarithm already reaches the last bucket at D).
 */
export function relativePositionBucketTable(numBuckets: number, maxDistance: number): number[] {
  return Array.from({ length: 2 * maxDistance + 1 }, (_, i) => relativePositionBucket(i - maxDistance, numBuckets, maxDistance));
}

/**
 * Build the encoder graph of `config` over `weights` (the WeightSet detection read, canonical names).
 * @returns the graph; `save(dir)` writes it with the weights as external data.
 * @throws MissingWeightError / WeightShapeError (weights/weight-set.ts) when `weights` lacks a tensor of `config` or
 *         holds it in another shape (a config detected from other weights).
 */
export function buildT5Encoder(config: T5EncoderConfig, weights: WeightSet, opts: T5EncoderGraphOptions = {}): OnnxGraph {
  const floatType = opts.floatType ?? 'float32';
  const g = new OnnxGraph('t5_encoder', floatType);
  const nn = new Layers(g, weights, { attention: opts.attention });
  const half = floatType === 'float16';
  const D = config.dModel;
  const toF32 = (x: string) => (half ? g.node('Cast', [x], { to: DataType.FLOAT }) : x);
  const param = (name: string, shape: number[]) => {
    nn.expectShape(name, shape);
    return nn.param(name);
  };

  const inputIds = g.input(T5_ENCODER_IO.inputIds, DataType.INT64, ['batch', 'sequence']);
  let x = toF32(g.node('Gather', [param(T5_NAMES.tokenEmbedding, [config.vocabSize, D]), inputIds], { axis: 0 }));

  // Relative position bias [1, heads, T, T] (+ the padding mask: [batch, heads, T, T]).
  const maxDistance = config.relativeAttentionMaxDistance;
  const T = g.node('Squeeze', [g.node('Shape', [inputIds], { start: 1, end: 2 }), g.ints('axis0', [0])]);
  const positions = g.node('Range', [g.int64Constant('zero', [], [0]), T, g.int64Constant('one', [], [1])]);
  const relative = g.node('Sub', [g.node('Unsqueeze', [positions, g.ints('axis0', [0])]), g.node('Unsqueeze', [positions, g.ints('axis1', [1])])]);
  const clamped = g.node('Min', [g.node('Max', [relative, g.int64Constant('minus_d', [], [-maxDistance])]), g.int64Constant('plus_d', [], [maxDistance])]);
  const table = g.ints('relative_buckets', relativePositionBucketTable(config.relativeAttentionNumBuckets, maxDistance));
  const buckets = g.node('Gather', [table, g.node('Add', [clamped, g.int64Constant('plus_d', [], [maxDistance])])], { axis: 0 });
  const biasTable = param(T5_NAMES.relativeAttentionBias, [config.relativeAttentionNumBuckets, config.numHeads]);
  const perHead = g.node('Transpose', [g.node('Gather', [biasTable, buckets], { axis: 0 })], { perm: [2, 0, 1] });
  let bias = g.node('Unsqueeze', [perHead, g.ints('axis0', [0])]);
  if (opts.attentionMask) {
    const mask = g.input(T5_ENCODER_IO.attentionMask, DataType.INT64, ['batch', 'sequence']);
    const padding = g.node('Equal', [mask, g.int64Constant('zero', [], [0])]);
    const additive = g.node('Where', [padding, g.floatConstant('lowest', [], [LOWEST[floatType]]), g.floatConstant('zero', [], [0])]);
    bias = g.node('Add', [bias, g.node('Unsqueeze', [additive, g.ints('axes12', [1, 2])])]);
  }

  for (let i = 0; i < config.numLayers; i++) {
    const p = T5_NAMES.block(i);
    const h = rmsNorm(nn, x, `${p}${T5_NAMES.attentionNorm}.weight`, config);
    const a = `${p}${T5_NAMES.attention}`;
    const q = nn.linear(h, `${a}.q`);
    const k = nn.linear(h, `${a}.k`);
    const v = nn.linear(h, `${a}.v`);
    const attended = nn.attention(q, k, v, config.numHeads, config.innerDim, { scale: 1, bias });
    x = g.node('Add', [x, toF32(nn.linear(attended, `${a}.o`))]);
    x = g.node('Add', [x, feedForward(nn, rmsNorm(nn, x, `${p}${T5_NAMES.ffNorm}.weight`, config), `${p}${T5_NAMES.ff}`, config)]);
  }
  const last = rmsNorm(nn, x, T5_NAMES.finalLayerNorm, config);
  g.floatOutput(T5_ENCODER_IO.lastHiddenState, last, ['batch', 'sequence', D]);
  return g;
}

/**
 * T5LayerNorm of the float32 residual stream x: x / √(mean(x²) + ε) in float32 (Pow → ReduceMean → Add → Sqrt →
 * Div, the pattern onnxruntime fuses into SimplifiedLayerNormalization), cast to the graph's type, times `weight`.
 */
function rmsNorm(nn: Layers, x: string, weight: string, config: T5EncoderConfig): string {
  const g = nn.g;
  nn.expectShape(weight, [config.dModel]);
  const variance = g.node('ReduceMean', [g.node('Pow', [x, g.float32Constant('two', [], [2])])], { axes: [-1], keepdims: 1 });
  let normed = g.node('Div', [x, g.node('Sqrt', [g.node('Add', [variance, g.float32Constant('eps', [], [config.layerNormEpsilon])])])]);
  if (g.floatType === 'float16') normed = g.node('Cast', [normed], { to: DataType.FLOAT16 });
  return g.node('Mul', [normed, nn.param(weight)]);
}

/**
 * T5DenseGatedActDense / T5DenseActDense on the normed n (graph type) → float32 [B, T, d_model]: wi_0 / wi_1 (or wi)
 * in the graph's type, the activation and gate product in float32, `wo` with a float32 initializer.
 */
function feedForward(nn: Layers, n: string, prefix: string, config: T5EncoderConfig): string {
  const g = nn.g;
  const toF32 = (x: string) => (g.floatType === 'float16' ? g.node('Cast', [x], { to: DataType.FLOAT }) : x);
  const hidden = config.isGatedAct
    ? g.node('Mul', [activation(g, toF32(nn.linear(n, `${prefix}.wi_0`)), config.denseActFn), toF32(nn.linear(n, `${prefix}.wi_1`))])
    : activation(g, toF32(nn.linear(n, `${prefix}.wi`)), config.denseActFn);
  const wo = `${prefix}.wo.weight`;
  nn.expectShape(wo, [config.dModel, config.dFf]);
  const woF32 = g.weight(wo, [config.dModel, config.dFf], () => nn.w.read(wo), { type: 'float32' });
  return g.node('MatMul', [hidden, g.node('Transpose', [woF32], { perm: [1, 0] })]);
}

/** ACT2FN[dense_act_fn] on a float32 value (float32 constants, so it serves float16 graphs' upcast section too). */
function activation(g: OnnxGraph, x: string, fn: T5Activation): string {
  const c = (hint: string, v: number) => g.float32Constant(hint, [], [v]);
  switch (fn) {
    case 'relu':
      return g.node('Relu', [x]);
    case 'silu':
      return g.node('Mul', [x, g.node('Sigmoid', [x])]);
    case 'gelu': {
      const erf = g.node('Erf', [g.node('Mul', [x, c('inv_sqrt2', Math.SQRT1_2)])]);
      return g.node('Mul', [g.node('Mul', [x, c('half', 0.5)]), g.node('Add', [erf, c('one', 1)])]);
    }
    case 'gelu_new': {
      // transformers NewGELUActivation: 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))).
      const cube = g.node('Pow', [x, c('three', 3)]);
      const inner = g.node('Mul', [g.node('Add', [x, g.node('Mul', [cube, c('k', 0.044715)])]), c('sqrt_2_over_pi', Math.sqrt(2 / Math.PI))]);
      return g.node('Mul', [g.node('Mul', [x, c('half', 0.5)]), g.node('Add', [g.node('Tanh', [inner]), c('one', 1)])]);
    }
  }
}
