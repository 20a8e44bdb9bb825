/**
 * Configuration of a CLIP text encoder (the text tower of OpenAI CLIP / OpenCLIP, as Stable Diffusion 1.x,
 * 2.x and SDXL use it) read from its tensors, in either of the two checkpoint layouts of that one architecture:
 *
 * - `transformers`: Hugging Face `CLIPTextModel` / `CLIPTextModelWithProjection` names from `text_model.` on
 *   (SD 1.x single files under `cond_stage_model.transformer.`, SDXL's first encoder under
 *   `conditioner.embedders.0.transformer.`, diffusers `text_encoder/` and `text_encoder_2/` `model.safetensors` as stored), plus
 *   `text_projection.weight` [P, H] (a Linear, y = x·Wᵀ) for the model with projection.
 * - `open_clip`: OpenCLIP names (SD 2.x under `cond_stage_model.model.`, SDXL's second encoder under
 *   `conditioner.embedders.1.model.`, the refiner's under `conditioner.embedders.0.model.`): fused
 *   `attn.in_proj_weight` [3H, H] (rows q, k, v), `positional_embedding` [P, H] without `.weight`, `ln_final`,
 *   and `text_projection` [H, P] used as y = x·P (open_clip `TextTransformer.forward`).
 *
 * Everything with a shape is read from the tensors (hidden size, layers, MLP width, vocabulary, positions,
 * projection); what the tensors cannot tell comes from hints (heads, activation, LayerNorm eps, the eos id used
 * for pooling, how many layers the model runs), with the family defaults below.
 * Sources: transformers `models/clip/modeling_clip.py`, open_clip `transformer.py`, diffusers
 * `loaders/single_file_utils.py` (`convert_ldm_clip_checkpoint`, `convert_open_clip_checkpoint`).
 */
import { WeightShapeError, type WeightSet } from '../../weights/weight-set';

/** Which checkpoint naming a CLIP text encoder uses (see the module docstring). */
export type ClipTextLayout = 'transformers' | 'open_clip';

/** The MLP activation: `quick_gelu` x·σ(1.702x) (OpenAI CLIP) or `gelu` (exact erf form, OpenCLIP). */
export type ClipTextActivation = 'quick_gelu' | 'gelu';

/**
 * The model families whose conventions fill the hints:
 * - `sd1`: OpenAI CLIP ViT-L/14 (SD 1.x): quick_gelu, every layer.
 * - `sd2`: OpenCLIP ViT-H/14 (SD 2.x): gelu, the penultimate layer — the file's N resblocks run N − 1
 *   (LDM `FrozenOpenCLIPEmbedder(layer='penultimate')`; diffusers' converter drops the last resblock and
 *   configures `num_hidden_layers` = N − 1).
 * - `sdxl-clip-l`: SDXL's first encoder (OpenAI CLIP ViT-L/14): quick_gelu, every layer.
 * - `sdxl-clip-g`: SDXL's (and the refiner's) OpenCLIP ViT-bigG/14: gelu, every layer (SDXL takes
 *   hidden_states[-2] itself, and its pooled vector from the full model's `text_embeds`).
 */
export type ClipTextFamily = 'sd1' | 'sd2' | 'sdxl-clip-l' | 'sdxl-clip-g';

/**
 * What the tensors cannot tell, in our own typed form. The integration layer fills these from a diffusers
 * `config.json` (`num_attention_heads`, `hidden_act`, `layer_norm_eps`, `num_hidden_layers`), an A1111 yaml
 * sidecar, or the family. Every field is optional; defaults are documented per field.
 */
export interface ClipTextHints {
  /** The family whose conventions fill the unset fields (see ClipTextFamily). Default: by layout (below). */
  family?: ClipTextFamily;
  /**
   * Attention heads. Default hidden/64: every released CLIP text tower uses 64-wide heads (ViT-L/14 768 → 12,
   * ViT-H/14 1024 → 16, ViT-bigG/14 1280 → 20).
   */
  heads?: number;
  /** MLP activation. Default: the family's, else quick_gelu for the transformers layout, gelu for open_clip. */
  activation?: ClipTextActivation;
  /** LayerNorm epsilon. Default 1e-5 (both upstreams). */
  layerNormEps?: number;
  /**
   * The end-of-text id: pooling takes each row's first position holding it. Default 49407 (`<|endoftext|>` of
   * the CLIP BPE). Real SD configs say `eos_token_id: 2`, which makes transformers pool at argmax(id) instead;
   * that differs only for ids above 49407 (textual-inversion tokens), where the first eos is the right one.
   */
  eosTokenId?: number;
  /**
   * How many of the file's layers the model runs (diffusers / transformers `num_hidden_layers`), 1..layers.
   * Default: the family's (sd2: layers − 1), else every layer in the file.
   */
  numHiddenLayers?: number;
}

/** A CLIP text encoder's architecture: what a graph builder needs. */
export interface ClipTextConfig {
  layout: ClipTextLayout;
  /** Width H of the token embeddings and every layer. */
  hiddenSize: number;
  /** Transformer layers in the file (`encoder.layers.N` / `transformer.resblocks.N`). */
  layers: number;
  /** Layers the model runs (≤ layers): the graph outputs hidden_states.0..numHiddenLayers. */
  numHiddenLayers: number;
  /** MLP width (fc1 / c_fc out features). */
  intermediateSize: number;
  /** Rows of the token embedding table. */
  vocabSize: number;
  /** Rows of the position table: the longest sequence the model takes (77 for every SD encoder). */
  maxPositions: number;
  heads: number;
  /** hiddenSize / heads. */
  headDim: number;
  activation: ClipTextActivation;
  layerNormEps: number;
  eosTokenId: number;
  /** Width P of `text_embeds`, or null when the checkpoint has no text projection. */
  projectionDim: number | null;
}

/** The tensors do not form a CLIP text encoder, or a hint contradicts them; the message says why. */
export class ClipTextConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClipTextConfigError';
  }
}

/** Family conventions (see ClipTextFamily). `dropLastLayers`: layers of the file the model does not run. */
export const CLIP_TEXT_FAMILY_DEFAULTS: Readonly<Record<ClipTextFamily, { activation: ClipTextActivation; dropLastLayers: number }>> = {
  sd1: { activation: 'quick_gelu', dropLastLayers: 0 },
  sd2: { activation: 'gelu', dropLastLayers: 1 },
  'sdxl-clip-l': { activation: 'quick_gelu', dropLastLayers: 0 },
  'sdxl-clip-g': { activation: 'gelu', dropLastLayers: 0 },
};

/** Head width of every released CLIP text tower (the default for `heads`). */
export const CLIP_HEAD_DIM = 64;
/** `<|endoftext|>` in the CLIP BPE vocabulary. */
export const CLIP_EOS_TOKEN_ID = 49407;
/** LayerNorm epsilon of both upstreams. */
export const CLIP_LAYER_NORM_EPS = 1e-5;

/** Canonical tensor names of one layout, so detection and the graph builder share one table. */
export interface ClipTextNames {
  tokenEmbedding: string;
  positionEmbedding: string;
  /** Prefix of layer i (ends with a dot). */
  layer: (i: number) => string;
  /** Prefix of the final LayerNorm (module path, no `.weight`). */
  finalNorm: string;
  /** The projection tensor (`text_projection.weight` [P, H] or `text_projection` [H, P]). */
  projection: string;
  /** Per-layer tensors relative to `layer(i)`, with their shapes in H (hidden) and I (MLP width). */
  layerTensors: (H: number, I: number) => Record<string, number[]>;
}

export const CLIP_TEXT_NAMES: Readonly<Record<ClipTextLayout, ClipTextNames>> = {
  transformers: {
    tokenEmbedding: 'text_model.embeddings.token_embedding.weight',
    positionEmbedding: 'text_model.embeddings.position_embedding.weight',
    layer: (i) => `text_model.encoder.layers.${i}.`,
    finalNorm: 'text_model.final_layer_norm',
    projection: 'text_projection.weight',
    layerTensors: (H, I) => ({
      'layer_norm1.weight': [H],
      'layer_norm1.bias': [H],
      'self_attn.q_proj.weight': [H, H],
      'self_attn.q_proj.bias': [H],
      'self_attn.k_proj.weight': [H, H],
      'self_attn.k_proj.bias': [H],
      'self_attn.v_proj.weight': [H, H],
      'self_attn.v_proj.bias': [H],
      'self_attn.out_proj.weight': [H, H],
      'self_attn.out_proj.bias': [H],
      'layer_norm2.weight': [H],
      'layer_norm2.bias': [H],
      'mlp.fc1.weight': [I, H],
      'mlp.fc1.bias': [I],
      'mlp.fc2.weight': [H, I],
      'mlp.fc2.bias': [H],
    }),
  },
  open_clip: {
    tokenEmbedding: 'token_embedding.weight',
    positionEmbedding: 'positional_embedding',
    layer: (i) => `transformer.resblocks.${i}.`,
    finalNorm: 'ln_final',
    projection: 'text_projection',
    layerTensors: (H, I) => ({
      'ln_1.weight': [H],
      'ln_1.bias': [H],
      'attn.in_proj_weight': [3 * H, H],
      'attn.in_proj_bias': [3 * H],
      'attn.out_proj.weight': [H, H],
      'attn.out_proj.bias': [H],
      'ln_2.weight': [H],
      'ln_2.bias': [H],
      'mlp.c_fc.weight': [I, H],
      'mlp.c_fc.bias': [I],
      'mlp.c_proj.weight': [H, I],
      'mlp.c_proj.bias': [H],
    }),
  },
};

/** The layout `weights` are in, or undefined when neither layout's token embedding is there. */
export function clipTextLayout(weights: WeightSet): ClipTextLayout | undefined {
  if (weights.has(CLIP_TEXT_NAMES.transformers.tokenEmbedding)) return 'transformers';
  if (weights.has(CLIP_TEXT_NAMES.open_clip.tokenEmbedding)) return 'open_clip';
  return undefined;
}

/**
 * Detect a CLIP text encoder's configuration from its tensors (canonical names: see the module docstring)
 * and the hints.
 * @param weights the encoder's tensors, prefix stripped (`WeightSet.fromFile(file, 'cond_stage_model.model.')`).
 * @throws ClipTextConfigError when neither layout is present, there are no layers, a layer holds tensors the
 *         architecture does not have, or a hint contradicts the tensors (heads not dividing H, numHiddenLayers out
 *         of range, eos id outside the vocabulary);
 *         MissingWeightError when a tensor of the detected architecture is absent (a layer gap, a missing bias);
 *         WeightShapeError when a tensor's shape contradicts the others (e.g. a transposed projection).
 */
export function detectClipTextConfig(weights: WeightSet, hints: ClipTextHints = {}): ClipTextConfig {
  const layout = clipTextLayout(weights);
  if (!layout) {
    throw new ClipTextConfigError(
      `${weights.where} is not a CLIP text encoder: it has neither "${CLIP_TEXT_NAMES.transformers.tokenEmbedding}" (transformers layout) nor "${CLIP_TEXT_NAMES.open_clip.tokenEmbedding}" (OpenCLIP layout)`,
    );
  }
  const names = CLIP_TEXT_NAMES[layout];
  const expect = (name: string, shape: readonly number[]): number[] => {
    const actual = weights.shape(name);
    if (actual.length !== shape.length || actual.some((d, i) => shape[i] !== -1 && d !== shape[i])) {
      throw new WeightShapeError(name, weights.where, actual, shape);
    }
    return actual;
  };

  const [vocabSize, hiddenSize] = expect(names.tokenEmbedding, [-1, -1]);
  const [maxPositions] = expect(names.positionEmbedding, [-1, hiddenSize]);

  const layerPrefix = names.layer(0).slice(0, -'0.'.length);
  const layers = weights.maxIndex(layerPrefix) + 1;
  if (layers === 0) throw new ClipTextConfigError(`${weights.where}: CLIP text encoder (${layout} layout) without layers: no "${layerPrefix}N.*" tensors`);

  const mlpName = names.layer(0) + (layout === 'transformers' ? 'mlp.fc1.weight' : 'mlp.c_fc.weight');
  const [intermediateSize] = expect(mlpName, [-1, hiddenSize]);
  const expected = names.layerTensors(hiddenSize, intermediateSize);
  for (let i = 0; i < layers; i++) {
    const prefix = names.layer(i);
    for (const [suffix, shape] of Object.entries(expected)) expect(prefix + suffix, shape);
  }
  // A tensor the architecture lacks (a layer scale, a separate q_proj_weight) would change the arithmetic:
  // refuse rather than ignore it.
  const unexpected = weights.names().filter((n) => n.startsWith(layerPrefix) && !Object.hasOwn(expected, n.slice(n.indexOf('.', layerPrefix.length) + 1)));
  if (unexpected.length > 0) {
    throw new ClipTextConfigError(`${weights.where}: tensors a CLIP text encoder layer does not have: ${unexpected.slice(0, 5).join(', ')}${unexpected.length > 5 ? ` (+${unexpected.length - 5} more)` : ''}`);
  }
  expect(`${names.finalNorm}.weight`, [hiddenSize]);
  expect(`${names.finalNorm}.bias`, [hiddenSize]);

  let projectionDim: number | null = null;
  if (weights.has(names.projection)) {
    projectionDim = layout === 'transformers' ? expect(names.projection, [-1, hiddenSize])[0] : expect(names.projection, [hiddenSize, -1])[1];
  }

  const family = hints.family ? CLIP_TEXT_FAMILY_DEFAULTS[hints.family] : undefined;
  const heads = hints.heads ?? hiddenSize / CLIP_HEAD_DIM;
  if (!Number.isInteger(heads) || heads <= 0 || hiddenSize % heads !== 0) {
    throw new ClipTextConfigError(
      hints.heads === undefined
        ? `${weights.where}: hidden size ${hiddenSize} is not a multiple of ${CLIP_HEAD_DIM}, so the head count cannot be defaulted: give the heads hint (num_attention_heads)`
        : `${weights.where}: heads hint ${hints.heads} does not divide the hidden size ${hiddenSize}`,
    );
  }
  const numHiddenLayers = hints.numHiddenLayers ?? layers - (family?.dropLastLayers ?? 0);
  if (!Number.isInteger(numHiddenLayers) || numHiddenLayers < 1 || numHiddenLayers > layers) {
    throw new ClipTextConfigError(`${weights.where}: numHiddenLayers ${numHiddenLayers} must be an integer from 1 to the ${layers} layers in the file`);
  }
  const eosTokenId = hints.eosTokenId ?? CLIP_EOS_TOKEN_ID;
  if (!Number.isInteger(eosTokenId) || eosTokenId < 0 || eosTokenId >= vocabSize) {
    throw new ClipTextConfigError(`${weights.where}: eosTokenId ${eosTokenId} is outside the vocabulary of ${vocabSize} tokens`);
  }
  const layerNormEps = hints.layerNormEps ?? CLIP_LAYER_NORM_EPS;
  if (!(layerNormEps > 0)) throw new ClipTextConfigError(`${weights.where}: layerNormEps must be positive, got ${layerNormEps}`);

  return {
    layout,
    hiddenSize,
    layers,
    numHiddenLayers,
    intermediateSize,
    vocabSize,
    maxPositions,
    heads,
    headDim: hiddenSize / heads,
    activation: hints.activation ?? family?.activation ?? (layout === 'transformers' ? 'quick_gelu' : 'gelu'),
    layerNormEps,
    eosTokenId,
    projectionDim,
  };
}

/**
 * Hints from a transformers `CLIPTextConfig` as a diffusers folder stores it (`text_encoder/config.json`):
 * `num_attention_heads`, `hidden_act`, `layer_norm_eps`, `num_hidden_layers`, `eos_token_id`; absent fields stay
 * unset. `eos_token_id` 2, what real SD configs carry from the original CLIP config, is transformers' legacy
 * signal to pool at argmax(input_ids) — for CLIP BPE ids the position of 49407 — so it maps to no hint (49407).
 * @throws ClipTextConfigError for a `hidden_act` other than quick_gelu / gelu, or a field that is not a number.
 */
export function clipTextHintsFromTransformersConfig(config: Readonly<Record<string, unknown>>): ClipTextHints {
  const num = (field: string): number | undefined => {
    const v = config[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ClipTextConfigError(`text encoder config: ${field} must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  const hints: ClipTextHints = {};
  const heads = num('num_attention_heads');
  if (heads !== undefined) hints.heads = heads;
  const eps = num('layer_norm_eps');
  if (eps !== undefined) hints.layerNormEps = eps;
  const layers = num('num_hidden_layers');
  if (layers !== undefined) hints.numHiddenLayers = layers;
  const eos = num('eos_token_id');
  if (eos !== undefined && eos !== 2) hints.eosTokenId = eos;
  const act = config.hidden_act;
  if (act !== undefined) {
    if (act !== 'quick_gelu' && act !== 'gelu') throw new ClipTextConfigError(`text encoder config: hidden_act ${JSON.stringify(act)} is not supported (quick_gelu or gelu)`);
    hints.activation = act;
  }
  return hints;
}
