/**
 * The CLIP text encoder as an ONNX graph, built from a checkpoint's own tensors (either layout of
 * checkpoints/detect/clip-text-config.ts). The architecture (transformers `CLIPTextTransformer`, open_clip
 * `TextTransformer`; identical arithmetic):
 *
 *   x = token_embedding[input_ids] + position_embedding[0..T−1]                 hidden_states.0
 *   each layer:  x += out_proj(causal_attention(layer_norm1(x)))
 *                x += fc2(act(fc1(layer_norm2(x))))                             hidden_states.i
 *   last_hidden_state = final_layer_norm(x after numHiddenLayers layers)
 *   pooler_output     = last_hidden_state at each row's first eos token
 *   text_embeds       = pooler_output · projection (no bias), when the checkpoint has one
 *
 * OpenCLIP's fused `attn.in_proj_weight` [3H, H] is one MatMul whose output splits into q, k, v (rows q, k, v,
 * as torch.nn.MultiheadAttention packs them); its `text_projection` [H, P] multiplies directly, while
 * transformers' `text_projection.weight` [P, H] is a Linear (transposed by a node). Initializers hold the
 * checkpoint tensors verbatim under their canonical names.
 *
 * I/O (docs ENGINE.md): in `input_ids` int64 [batch, sequence] (sequence ≤ maxPositions; absolute positions
 * 0..T−1 for every row, no padding mask: the SD pipelines pass none); out `last_hidden_state`
 * [batch, sequence, H], `hidden_states.0..numHiddenLayers` [batch, sequence, H], `pooler_output` [batch, H],
 * and `text_embeds` [batch, P] when projectionDim is set — all in the graph's float type.
 */
import { CLIP_TEXT_NAMES, type ClipTextConfig } from '../checkpoints/detect/clip-text-config';
import type { WeightSet } from '../weights/weight-set';
import { Layers, type AttentionKind } from './layers';
import { DataType, OnnxGraph, type FloatType } from './onnx-graph';

export interface ClipTextGraphOptions {
  /**
   * Compute type. Default 'float32'. A 'float16' graph is for GPU providers; onnxruntime's CPU provider runs
   * it too (it casts around its float32-only kernels such as MultiHeadAttention), at float16 accuracy.
   */
  floatType?: FloatType;
  /** How attention is emitted (layers.ts). Default 'contrib'. */
  attention?: AttentionKind;
}

/** Graph input names besides `input_ids`. */
export const CLIP_TEXT_INPUTS = {
  /** [E, H] textual-inversion vectors, addressed by ids V..V+E−1 (E = 0: none). */
  extraTokenEmbeddings: 'extra_token_embeddings',
} as const;

/** Graph output names (ENGINE.md's text encoder contract). */
export const CLIP_TEXT_OUTPUTS = {
  lastHiddenState: 'last_hidden_state',
  pooled: 'pooler_output',
  textEmbeds: 'text_embeds',
  /** hidden_states.i: i = 0 is the embeddings, i ≥ 1 the output of layer i (no final norm). */
  hiddenState: (i: number) => `hidden_states.${i}`,
} as const;

/**
 * Build the text encoder graph of `config` over `weights` (the WeightSet detection read, canonical names).
 * @returns the graph; `save(dir)` writes it with the weights as external data.
 * @throws MissingWeightError / WeightShapeError (weights/weight-set.ts) when `weights` lacks a tensor of
 *         `config` (a config detected from other weights).
 */
export function buildClipTextEncoder(config: ClipTextConfig, weights: WeightSet, opts: ClipTextGraphOptions = {}): OnnxGraph {
  const g = new OnnxGraph('clip_text_encoder', opts.floatType ?? 'float32');
  const nn = new Layers(g, weights, { attention: opts.attention });
  const names = CLIP_TEXT_NAMES[config.layout];
  const H = config.hiddenSize;
  const dims = ['batch', 'sequence', H];

  const inputIds = g.input('input_ids', DataType.INT64, ['batch', 'sequence']);
  nn.expectShape(names.tokenEmbedding, [config.vocabSize, H]);
  nn.expectShape(names.positionEmbedding, [config.maxPositions, H]);
  const tokens = tokenEmbeddings(g, nn.param(names.tokenEmbedding), inputIds, config.vocabSize, H);
  const seqLen = g.node('Shape', [inputIds], { start: 1, end: 2 });
  const positions = g.node('Slice', [nn.param(names.positionEmbedding), g.ints('pos_start', [0]), seqLen, g.ints('pos_axis', [0])]);
  let x = g.node('Add', [tokens, positions]);
  g.floatOutput(CLIP_TEXT_OUTPUTS.hiddenState(0), x, dims);

  for (let i = 0; i < config.numHiddenLayers; i++) {
    x = config.layout === 'transformers' ? transformersLayer(nn, config, names.layer(i), x) : openClipLayer(nn, config, names.layer(i), x);
    g.floatOutput(CLIP_TEXT_OUTPUTS.hiddenState(i + 1), x, dims);
  }

  const last = nn.layerNorm(x, names.finalNorm, config.layerNormEps);
  g.floatOutput(CLIP_TEXT_OUTPUTS.lastHiddenState, last, dims);

  // First eos of each row: ArgMax returns the first maximal index (select_last_index 0), as torch.argmax on
  // (input_ids == eos) does in transformers; a row without eos pools position 0, as there.
  const isEos = g.node('Cast', [g.node('Equal', [inputIds, g.int64Constant('eos', [], [config.eosTokenId])])], { to: DataType.INT32 });
  const eosIndex = g.node('ArgMax', [isEos], { axis: 1, keepdims: 1, select_last_index: 0 });
  const pooled = g.node('GatherND', [last, eosIndex], { batch_dims: 1 });
  g.floatOutput(CLIP_TEXT_OUTPUTS.pooled, pooled, ['batch', H]);

  if (config.projectionDim !== null) {
    const P = config.projectionDim;
    const textEmbeds =
      config.layout === 'transformers'
        ? g.node('MatMul', [pooled, g.node('Transpose', [param(nn, names.projection, [P, H])], { perm: [1, 0] })])
        : g.node('MatMul', [pooled, param(nn, names.projection, [H, P])]);
    g.floatOutput(CLIP_TEXT_OUTPUTS.textEmbeds, textEmbeds, ['batch', P]);
  }
  return g;
}

/**
 * The token embedding lookup with textual-inversion vectors: ids below the vocabulary size V read the token
 * table; an id V + k reads row k of the graph input `extra_token_embeddings` [E, H] (the vectors of the
 * embeddings a prompt names; AUTOMATIC1111's EmbeddingsWithFixes puts them at those positions the same way).
 * Callers without embeddings feed an empty [0, H] table. A zero row is put in front so that E = 0 still gives
 * Gather a valid table.
 */
function tokenEmbeddings(g: OnnxGraph, table: string, ids: string, vocabSize: number, H: number): string {
  const extraName = CLIP_TEXT_INPUTS.extraTokenEmbeddings;
  g.floatInput(extraName, ['extra_tokens', H]);
  const V = g.int64Constant('vocab_size', [], [vocabSize]);
  const isExtra = g.node('GreaterOrEqual', [ids, V]);
  const zero = g.int64Constant('zero', [], [0]);
  const base = g.node('Gather', [table, g.node('Where', [isExtra, zero, ids])], { axis: 0 });
  const padded = g.node('Concat', [g.floatConstant('zero_row', [1, H], new Float32Array(H)), extraName], { axis: 0 });
  const extraIndex = g.node('Where', [isExtra, g.node('Sub', [ids, g.int64Constant('vocab_minus_one', [], [vocabSize - 1])]), zero]);
  const extra = g.node('Gather', [padded, extraIndex], { axis: 0 });
  return g.node('Where', [g.node('Unsqueeze', [isExtra, g.ints('last_axis', [-1])]), extra, base]);
}

/** transformers `CLIPEncoderLayer` (pre-LayerNorm residual block). */
function transformersLayer(nn: Layers, c: ClipTextConfig, p: string, x: string): string {
  const h = nn.layerNorm(x, `${p}layer_norm1`, c.layerNormEps);
  const q = nn.linear(h, `${p}self_attn.q_proj`);
  const k = nn.linear(h, `${p}self_attn.k_proj`);
  const v = nn.linear(h, `${p}self_attn.v_proj`);
  const attn = nn.linear(nn.causalSelfAttention(q, k, v, c.heads, c.hiddenSize), `${p}self_attn.out_proj`);
  x = nn.add(x, attn);
  const mlp = nn.linear(activation(nn, c, nn.linear(nn.layerNorm(x, `${p}layer_norm2`, c.layerNormEps), `${p}mlp.fc1`)), `${p}mlp.fc2`);
  return nn.add(x, mlp);
}

/** open_clip `ResidualAttentionBlock` (same arithmetic; fused q/k/v projection). */
function openClipLayer(nn: Layers, c: ClipTextConfig, p: string, x: string): string {
  const g = nn.g;
  const H = c.hiddenSize;
  const h = nn.layerNorm(x, `${p}ln_1`, c.layerNormEps);
  const inProj = g.node('Transpose', [param(nn, `${p}attn.in_proj_weight`, [3 * H, H])], { perm: [1, 0] });
  const qkv = g.node('Add', [g.node('MatMul', [h, inProj]), param(nn, `${p}attn.in_proj_bias`, [3 * H])]);
  const [q, k, v] = g.nodeOutputs('Split', [qkv], { axis: 2 }, { outputs: 3 });
  const attn = nn.linear(nn.causalSelfAttention(q, k, v, c.heads, H), `${p}attn.out_proj`);
  x = nn.add(x, attn);
  const mlp = nn.linear(activation(nn, c, nn.linear(nn.layerNorm(x, `${p}ln_2`, c.layerNormEps), `${p}mlp.c_fc`)), `${p}mlp.c_proj`);
  return nn.add(x, mlp);
}

function activation(nn: Layers, c: ClipTextConfig, x: string): string {
  return c.activation === 'quick_gelu' ? nn.quickGelu(x) : nn.gelu(x);
}

/** The initializer of `name`, its shape checked against the config. */
function param(nn: Layers, name: string, shape: number[]): string {
  nn.expectShape(name, shape);
  return nn.param(name);
}
