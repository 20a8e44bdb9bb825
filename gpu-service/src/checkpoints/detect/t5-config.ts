/**
 * Configuration of a T5 encoder (transformers `T5EncoderModel`: the text encoder FLUX.1 and Stable Diffusion 3.x
 * call `t5xxl` / `text_encoder_2` / `text_encoder_3`, T5 v1.1 with a gated-gelu feed-forward; also v1.0-style
 * ungated models) read from its tensors, under transformers' names (canonical):
 *
 *   shared.weight                                                  [vocab, d_model]  token embedding
 *   encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight  [num_buckets, num_heads]
 *   encoder.block.N.layer.0.layer_norm.weight                      [d_model]
 *   encoder.block.N.layer.0.SelfAttention.{q,k,v}.weight           [num_heads·d_kv, d_model]
 *   encoder.block.N.layer.0.SelfAttention.o.weight                 [d_model, num_heads·d_kv]
 *   encoder.block.N.layer.1.layer_norm.weight                      [d_model]
 *   encoder.block.N.layer.1.DenseReluDense.{wi_0,wi_1}.weight      [d_ff, d_model]   (gated; `wi` when not)
 *   encoder.block.N.layer.1.DenseReluDense.wo.weight               [d_model, d_ff]
 *   encoder.final_layer_norm.weight                                [d_model]
 *
 * No biases anywhere; only the first block holds the relative position bias, which every block uses
 * (transformers `T5Stack`: `has_relative_attention_bias = i == 0`, the bias passed on). Files in other namings
 * (ComfyUI's standalone `t5xxl_fp16.safetensors`, a diffusers folder, a full T5ForConditionalGeneration) are
 * brought to these names by checkpoints/key-maps/t5-encoder.ts.
 *
 * Every shape comes from the tensors: d_model, vocabulary, layers, d_ff, gated or not, the relative attention
 * buckets and the head count (both from `relative_attention_bias`), d_kv = (q rows)/heads. What tensors cannot
 * tell comes from hints (max distance of the buckets, RMS-norm epsilon, the activation), with T5 v1.1's values as
 * defaults. Source: transformers `models/t5/modeling_t5.py`, `configuration_t5.py`.
 */
import { WeightShapeError, type WeightSet } from '../../weights/weight-set';

/**
 * The feed-forward activation (transformers `ACT2FN[dense_act_fn]`): `gelu_new` = tanh approximation
 * 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))) (T5 v1.1, flan-T5; `gelu_pytorch_tanh` is the same function),
 * `gelu` = exact erf form, `relu` (T5 v1.0), `silu`.
 */
export type T5Activation = 'gelu_new' | 'gelu' | 'relu' | 'silu';

/** What the tensors cannot tell, in our own typed form; every field optional with the documented default. */
export interface T5EncoderHints {
  /**
   * Attention heads (`num_heads`). The tensors tell it (`relative_attention_bias` has one column per head), so no
   * d_model/64 default is needed; a hint is checked against them.
   */
  numHeads?: number;
  /** `relative_attention_max_distance`: relative positions at or beyond it share the last bucket. Default 128. */
  relativeAttentionMaxDistance?: number;
  /** `layer_norm_epsilon` of every T5LayerNorm (RMS norm). Default 1e-6. */
  layerNormEpsilon?: number;
  /** `dense_act_fn`. Default `gelu_new` (T5 v1.1's gated-gelu); v1.0 configs say `relu`. */
  denseActFn?: T5Activation;
}

/** A T5 encoder's architecture: what the graph builder needs (transformers `T5Config` field names, camelCase). */
export interface T5EncoderConfig {
  /** Width of the embeddings and the residual stream. */
  dModel: number;
  /** Width of one attention head. */
  dKv: number;
  numHeads: number;
  /** numHeads · dKv: the q/k/v projections' output width (need not equal dModel). */
  innerDim: number;
  /** Feed-forward width (rows of wi / wi_0). */
  dFf: number;
  /** Blocks in `encoder.block`. */
  numLayers: number;
  /** Rows of the token embedding. */
  vocabSize: number;
  /** Rows of `relative_attention_bias` (transformers' `relative_attention_num_buckets`; both directions). */
  relativeAttentionNumBuckets: number;
  relativeAttentionMaxDistance: number;
  layerNormEpsilon: number;
  /** wi_0 / wi_1 (gated: act(wi_0 x) · wi_1 x) or a single wi. */
  isGatedAct: boolean;
  denseActFn: T5Activation;
}

/** The tensors do not form a T5 encoder, or a hint contradicts them; the message says why. */
export class T5ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'T5ConfigError';
  }
}

/** T5 v1.1 defaults (transformers `T5Config`). */
export const T5_DEFAULTS = {
  relativeAttentionMaxDistance: 128,
  layerNormEpsilon: 1e-6,
  denseActFn: 'gelu_new',
} as const satisfies Partial<T5EncoderHints>;

/** Canonical tensor names (shared by detection, the key map and the graph builder). */
export const T5_NAMES = {
  tokenEmbedding: 'shared.weight',
  /** The same table as transformers' encoder stores it (tied to `shared.weight`). */
  encoderTokenEmbedding: 'encoder.embed_tokens.weight',
  relativeAttentionBias: 'encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight',
  finalLayerNorm: 'encoder.final_layer_norm.weight',
  /** Prefix of block i (ends with a dot). */
  block: (i: number) => `encoder.block.${i}.`,
  /** Module paths inside a block (no `.weight`). */
  attention: 'layer.0.SelfAttention',
  attentionNorm: 'layer.0.layer_norm',
  ffNorm: 'layer.1.layer_norm',
  ff: 'layer.1.DenseReluDense',
} as const;

/** Per-block tensors relative to `block(i)` with their shapes. */
function blockTensors(c: Pick<T5EncoderConfig, 'dModel' | 'innerDim' | 'dFf' | 'isGatedAct'>): Record<string, number[]> {
  const { dModel: D, innerDim: I, dFf: F } = c;
  const ff = c.isGatedAct
    ? { [`${T5_NAMES.ff}.wi_0.weight`]: [F, D], [`${T5_NAMES.ff}.wi_1.weight`]: [F, D] }
    : { [`${T5_NAMES.ff}.wi.weight`]: [F, D] };
  return {
    [`${T5_NAMES.attentionNorm}.weight`]: [D],
    [`${T5_NAMES.attention}.q.weight`]: [I, D],
    [`${T5_NAMES.attention}.k.weight`]: [I, D],
    [`${T5_NAMES.attention}.v.weight`]: [I, D],
    [`${T5_NAMES.attention}.o.weight`]: [D, I],
    [`${T5_NAMES.ffNorm}.weight`]: [D],
    ...ff,
    [`${T5_NAMES.ff}.wo.weight`]: [D, F],
  };
}

/** Every canonical tensor of `config` with its shape (what the graph reads; detection checks them all). */
export function t5EncoderTensors(config: T5EncoderConfig): Map<string, number[]> {
  const out = new Map<string, number[]>([
    [T5_NAMES.tokenEmbedding, [config.vocabSize, config.dModel]],
    [T5_NAMES.relativeAttentionBias, [config.relativeAttentionNumBuckets, config.numHeads]],
  ]);
  const per = blockTensors(config);
  for (let i = 0; i < config.numLayers; i++) for (const [suffix, shape] of Object.entries(per)) out.set(T5_NAMES.block(i) + suffix, shape);
  out.set(T5_NAMES.finalLayerNorm, [config.dModel]);
  return out;
}

const ACTIVATIONS: readonly T5Activation[] = ['gelu_new', 'gelu', 'relu', 'silu'];

/**
 * Detect a T5 encoder's configuration from its tensors (canonical names, module docstring) and the hints.
 * @param weights the encoder's tensors under canonical names (checkpoints/key-maps/t5-encoder.ts makes them).
 * @throws T5ConfigError when the token embedding or the blocks are absent, a block holds tensors the architecture
 *         lacks (biases, a per-layer relative bias as in UMT5, scaled-fp8 `scale_weight`s), the widths do not split
 *         into the heads, or a hint contradicts the tensors / is out of range;
 *         MissingWeightError when a tensor of the detected architecture is absent (a block gap, no
 *         `relative_attention_bias`, no final norm);
 *         WeightShapeError when a tensor's shape contradicts the others.
 */
export function detectT5EncoderConfig(weights: WeightSet, hints: T5EncoderHints = {}): T5EncoderConfig {
  if (!weights.has(T5_NAMES.tokenEmbedding)) {
    throw new T5ConfigError(
      weights.has(T5_NAMES.encoderTokenEmbedding)
        ? `${weights.where}: the token embedding is stored as "${T5_NAMES.encoderTokenEmbedding}"; read the file through t5EncoderKeyMap (checkpoints/key-maps/t5-encoder.ts), which names it "${T5_NAMES.tokenEmbedding}"`
        : `${weights.where} is not a T5 encoder: it has no token embedding "${T5_NAMES.tokenEmbedding}" (or "${T5_NAMES.encoderTokenEmbedding}")`,
    );
  }
  const expect = (name: string, shape: readonly number[]): number[] => {
    const actual = weights.shape(name);
    if (actual.length !== shape.length || actual.some((d, i) => shape[i] !== -1 && d !== shape[i])) throw new WeightShapeError(name, weights.where, actual, shape);
    return actual;
  };
  const [vocabSize, dModel] = expect(T5_NAMES.tokenEmbedding, [-1, -1]);
  const blockPrefix = 'encoder.block.';
  const numLayers = weights.maxIndex(blockPrefix) + 1;
  if (numLayers === 0) throw new T5ConfigError(`${weights.where}: T5 encoder without blocks: no "${blockPrefix}N.*" tensors`);

  const [relativeAttentionNumBuckets, numHeads] = expect(T5_NAMES.relativeAttentionBias, [-1, -1]);
  if (hints.numHeads !== undefined && hints.numHeads !== numHeads) {
    throw new T5ConfigError(`${weights.where}: numHeads hint ${hints.numHeads} contradicts "${T5_NAMES.relativeAttentionBias}" [${relativeAttentionNumBuckets}, ${numHeads}], which has one column per head`);
  }
  const [innerDim] = expect(`${T5_NAMES.block(0)}${T5_NAMES.attention}.q.weight`, [-1, dModel]);
  if (innerDim % numHeads !== 0) {
    throw new T5ConfigError(`${weights.where}: the attention width ${innerDim} (rows of q) does not split into the ${numHeads} heads of relative_attention_bias`);
  }
  const isGatedAct = weights.has(`${T5_NAMES.block(0)}${T5_NAMES.ff}.wi_0.weight`);
  const [dFf] = expect(`${T5_NAMES.block(0)}${T5_NAMES.ff}.${isGatedAct ? 'wi_0' : 'wi'}.weight`, [-1, dModel]);

  const expected = blockTensors({ dModel, innerDim, dFf, isGatedAct });
  for (let i = 0; i < numLayers; i++) for (const [suffix, shape] of Object.entries(expected)) expect(T5_NAMES.block(i) + suffix, shape);
  expect(T5_NAMES.finalLayerNorm, [dModel]);
  // transformers ties encoder.embed_tokens to shared: a file holding both holds one table twice (the graph reads shared).
  if (weights.has(T5_NAMES.encoderTokenEmbedding)) expect(T5_NAMES.encoderTokenEmbedding, [vocabSize, dModel]);
  // A tensor the architecture lacks would change the arithmetic (a bias, UMT5's per-layer position bias, a
  // scaled-fp8 scale): refuse rather than ignore it.
  const known = new Set(Object.keys(expected));
  const unexpected = weights.names().filter((n) => {
    if (n === T5_NAMES.encoderTokenEmbedding || n === T5_NAMES.relativeAttentionBias || n === T5_NAMES.finalLayerNorm) return false;
    const m = /^encoder\.block\.\d+\.(.+)$/.exec(n);
    return m ? !known.has(m[1]) : n.startsWith('encoder.');
  });
  if (unexpected.length > 0) {
    throw new T5ConfigError(`${weights.where}: tensors a T5 encoder does not have: ${unexpected.slice(0, 5).join(', ')}${unexpected.length > 5 ? ` (+${unexpected.length - 5} more)` : ''}`);
  }

  const relativeAttentionMaxDistance = hints.relativeAttentionMaxDistance ?? T5_DEFAULTS.relativeAttentionMaxDistance;
  // Half the buckets per direction, half of those exact: the log-spaced buckets start at numBuckets/4.
  const maxExact = Math.floor(Math.floor(relativeAttentionNumBuckets / 2) / 2);
  if (relativeAttentionNumBuckets < 4 || relativeAttentionNumBuckets % 2 !== 0) {
    throw new T5ConfigError(`${weights.where}: "${T5_NAMES.relativeAttentionBias}" has ${relativeAttentionNumBuckets} buckets; a bidirectional T5 encoder needs an even number, at least 4`);
  }
  if (!Number.isInteger(relativeAttentionMaxDistance) || relativeAttentionMaxDistance <= maxExact) {
    throw new T5ConfigError(`${weights.where}: relativeAttentionMaxDistance must be an integer above ${maxExact} (a quarter of the ${relativeAttentionNumBuckets} buckets), got ${relativeAttentionMaxDistance}`);
  }
  const layerNormEpsilon = hints.layerNormEpsilon ?? T5_DEFAULTS.layerNormEpsilon;
  if (!(layerNormEpsilon > 0)) throw new T5ConfigError(`${weights.where}: layerNormEpsilon must be positive, got ${layerNormEpsilon}`);
  const denseActFn = hints.denseActFn ?? T5_DEFAULTS.denseActFn;
  if (!ACTIVATIONS.includes(denseActFn)) throw new T5ConfigError(`${weights.where}: denseActFn ${JSON.stringify(denseActFn)} is not one of ${ACTIVATIONS.join(', ')}`);

  return {
    dModel,
    dKv: innerDim / numHeads,
    numHeads,
    innerDim,
    dFf,
    numLayers,
    vocabSize,
    relativeAttentionNumBuckets,
    relativeAttentionMaxDistance,
    layerNormEpsilon,
    isGatedAct,
    denseActFn,
  };
}

/**
 * Hints from a transformers `T5Config` as a diffusers folder stores it (`text_encoder_2/config.json`): `num_heads`,
 * `relative_attention_max_distance`, `layer_norm_epsilon`, and the activation from `dense_act_fn`, else from
 * `feed_forward_proj` ("gated-gelu" → gelu_new, as T5Config does; "relu", "gated-silu" → their last part).
 * Absent fields stay unset.
 * @throws T5ConfigError for an activation other than gelu_new / gelu_pytorch_tanh / gelu / relu / silu (swish), or a
 *         numeric field that is not a number.
 */
export function t5HintsFromTransformersConfig(config: Readonly<Record<string, unknown>>): T5EncoderHints {
  const num = (field: string): number | undefined => {
    const v = config[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new T5ConfigError(`T5 config: ${field} must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  const hints: T5EncoderHints = {};
  const heads = num('num_heads');
  if (heads !== undefined) hints.numHeads = heads;
  const distance = num('relative_attention_max_distance');
  if (distance !== undefined) hints.relativeAttentionMaxDistance = distance;
  const eps = num('layer_norm_epsilon');
  if (eps !== undefined) hints.layerNormEpsilon = eps;
  let act: unknown = config.dense_act_fn;
  if (act === undefined && typeof config.feed_forward_proj === 'string') {
    act = config.feed_forward_proj === 'gated-gelu' ? 'gelu_new' : config.feed_forward_proj.split('-').at(-1);
  }
  if (act !== undefined && act !== null) {
    const aliases: Record<string, T5Activation> = { gelu_new: 'gelu_new', gelu_pytorch_tanh: 'gelu_new', gelu: 'gelu', relu: 'relu', silu: 'silu', swish: 'silu' };
    const mapped = typeof act === 'string' && Object.hasOwn(aliases, act) ? aliases[act] : undefined;
    if (!mapped) throw new T5ConfigError(`T5 config: dense_act_fn ${JSON.stringify(act)} is not supported (${Object.keys(aliases).join(', ')})`);
    hints.denseActFn = mapped;
  }
  return hints;
}
