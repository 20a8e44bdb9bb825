/**
 * Architecture detection for the FLUX.1 transformer (Black Forest Labs' `flux.model.Flux`; ComfyUI
 * comfy/ldm/flux/model.py; diffusers `FluxTransformer2DModel` on converted weights) from the tensors of a
 * WeightSet under the original single-file names without prefix (`img_in.weight`, `double_blocks.N.img_attn.qkv.weight`,
 * `single_blocks.N.linear1.weight`, `final_layer.linear.weight`, …: a BFL file's own keys, a diffusers folder's
 * renamed by checkpoints/key-maps/diffusers-flux.ts).
 *
 * What the tensors tell: the hidden size and packed input width (`img_in`), the output width (`final_layer.linear`),
 * the T5 context width (`txt_in`), the CLIP pooled width (`vector_in.in_layer`), the sinusoid width (`time_in.in_layer`,
 * 256), the head width (the per-head QK RMSNorm scales `…norm.query_norm.scale`, so the head count too), the MLP
 * width (`img_mlp.0`), double/single block counts, dev-style guidance distillation (`guidance_in` present) and qkv
 * biases. What they cannot tell comes as hints (FluxHints): the rotary axes split and base.
 *
 * Every tensor of the detected architecture is then checked (fluxTensorShapes): a missing one is a
 * MissingWeightError, a wrong shape a WeightShapeError, a tensor the architecture does not have an Error naming it
 * (a ControlNet, an IP-adapter or another network is not silently built as FLUX.1).
 */
import { WeightShapeError, type WeightSet } from '../../weights/weight-set';

/** What detection needs besides the tensors. */
export interface FluxHints {
  /**
   * Attention heads (diffusers `num_attention_heads`). Optional: the head width is read from the QK-norm scales;
   * when given it must agree with them (hidden size = heads × head width).
   */
  heads?: number;
  /** Width per head (diffusers `attention_head_dim`). Optional, checked against the QK-norm scales when given. */
  headDim?: number;
  /**
   * Rotary widths per position-id axis (diffusers `axes_dims_rope`, BFL `axes_dim`): even, summing to the head
   * width. Default [16, 56, 56] (FLUX.1), which only fits a head width of 128.
   */
  axesDimsRope?: readonly number[];
  /** RoPE base θ. Default 10000 (FLUX.1). */
  theta?: number;
}

/** FLUX.1 conventions (BFL `flux/util.py` configs, ComfyUI model_detection, diffusers defaults). */
export const FLUX1_HINTS = { axesDimsRope: [16, 56, 56], theta: 10000 } as const satisfies FluxHints;

/** An error in the hints (not in the file): names the hint and the rule. */
export class FluxHintError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FluxHintError';
  }
}

/**
 * Hints from a diffusers `transformer/config.json` (FluxTransformer2DModel): `num_attention_heads`,
 * `attention_head_dim`, `axes_dims_rope` (theta is fixed at 10000 there: `FluxPosEmbed(theta=10000)`).
 * @throws FluxHintError when a field has the wrong type.
 */
export function fluxHintsFromDiffusersConfig(config: Record<string, unknown>): FluxHints {
  const hints: FluxHints = {};
  if (config.num_attention_heads !== undefined && config.num_attention_heads !== null) hints.heads = positiveInteger('num_attention_heads', config.num_attention_heads);
  if (config.axes_dims_rope !== undefined && config.axes_dims_rope !== null) {
    if (!Array.isArray(config.axes_dims_rope)) throw new FluxHintError(`axes_dims_rope must be a list of integers, got ${JSON.stringify(config.axes_dims_rope)}`);
    hints.axesDimsRope = config.axes_dims_rope.map((v) => positiveInteger('axes_dims_rope', v));
  }
  if (config.attention_head_dim !== undefined && config.attention_head_dim !== null) hints.headDim = positiveInteger('attention_head_dim', config.attention_head_dim);
  return hints;
}

function positiveInteger(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new FluxHintError(`${field} must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

/** A detected FLUX.1 transformer: everything the graph builder needs. */
export interface FluxConfig {
  /** Width of the token streams (BFL `hidden_size`; 3072 in FLUX.1). */
  hiddenSize: number;
  /** Attention heads (24) and width per head (128); heads × headDim = hiddenSize. */
  heads: number;
  headDim: number;
  /** Double-stream blocks (BFL `depth`, diffusers `num_layers`; 19). */
  depth: number;
  /** Single-stream blocks (BFL `depth_single_blocks`, diffusers `num_single_layers`; 38). */
  depthSingleBlocks: number;
  /** Width of a packed latent token (`img_in` input): latent channels × 2 × 2 = 64. */
  inChannels: number;
  /** Width of an output token (`final_layer.linear` output; 64). */
  outChannels: number;
  /** Width of encoder_hidden_states (T5 d_model; 4096). */
  contextDim: number;
  /** Width of pooled_projections (CLIP-L pooler output; 768). */
  pooledDim: number;
  /** Width of the sinusoidal timestep (and guidance) embedding fed to `time_in` (256). */
  timestepEmbedDim: number;
  /** Hidden width of every MLP (`img_mlp.0` rows; mlpRatio × hiddenSize = 12288). */
  mlpHiddenDim: number;
  /** mlpHiddenDim / hiddenSize (4 in FLUX.1). */
  mlpRatio: number;
  /** dev-style guidance distillation: `guidance_in` embeds a guidance scale (schnell has none). */
  guidanceEmbed: boolean;
  /** Whether the attention qkv projections have biases (BFL `qkv_bias`; true in FLUX.1). */
  qkvBias: boolean;
  /** Rotary widths per position-id axis, summing to headDim ([16, 56, 56]). */
  axesDim: number[];
  /** RoPE base θ (10000). */
  theta: number;
  /** eps of the affine-free LayerNorms (1e-6) and of the QK RMSNorms (1e-6). */
  layerNormEps: number;
  rmsNormEps: number;
  /** The model multiplies timestep (σ) and guidance by this before their sinusoids (BFL `time_factor`; 1000). */
  timeFactor: number;
}

/**
 * Every tensor of a FLUX.1 transformer of `config`, canonical name → shape (torch layouts: Linear [out, in]).
 * Also what tests and the benchmark use to write checkpoints of any configuration.
 */
export function fluxTensorShapes(config: Pick<FluxConfig, 'hiddenSize' | 'headDim' | 'depth' | 'depthSingleBlocks' | 'inChannels' | 'outChannels' | 'contextDim' | 'pooledDim' | 'timestepEmbedDim' | 'mlpHiddenDim' | 'guidanceEmbed' | 'qkvBias'>): Map<string, number[]> {
  const D = config.hiddenSize;
  const M = config.mlpHiddenDim;
  const t = new Map<string, number[]>();
  const linear = (name: string, out: number, inp: number, bias = true) => {
    t.set(`${name}.weight`, [out, inp]);
    if (bias) t.set(`${name}.bias`, [out]);
  };
  const mlpEmbedder = (name: string, inp: number) => {
    linear(`${name}.in_layer`, D, inp);
    linear(`${name}.out_layer`, D, D);
  };
  linear('img_in', D, config.inChannels);
  linear('txt_in', D, config.contextDim);
  mlpEmbedder('time_in', config.timestepEmbedDim);
  mlpEmbedder('vector_in', config.pooledDim);
  if (config.guidanceEmbed) mlpEmbedder('guidance_in', config.timestepEmbedDim);
  for (let i = 0; i < config.depth; i++) {
    for (const stream of ['img', 'txt']) {
      const p = `double_blocks.${i}.${stream}`;
      linear(`${p}_mod.lin`, 6 * D, D);
      linear(`${p}_attn.qkv`, 3 * D, D, config.qkvBias);
      t.set(`${p}_attn.norm.query_norm.scale`, [config.headDim]);
      t.set(`${p}_attn.norm.key_norm.scale`, [config.headDim]);
      linear(`${p}_attn.proj`, D, D);
      linear(`${p}_mlp.0`, M, D);
      linear(`${p}_mlp.2`, D, M);
    }
  }
  for (let i = 0; i < config.depthSingleBlocks; i++) {
    const p = `single_blocks.${i}`;
    linear(`${p}.modulation.lin`, 3 * D, D);
    linear(`${p}.linear1`, 3 * D + M, D);
    linear(`${p}.linear2`, D, D + M);
    t.set(`${p}.norm.query_norm.scale`, [config.headDim]);
    t.set(`${p}.norm.key_norm.scale`, [config.headDim]);
  }
  linear('final_layer.adaLN_modulation.1', 2 * D, D);
  linear('final_layer.linear', config.outChannels, D);
  return t;
}

/**
 * Read a FLUX.1 transformer's architecture from its tensors and check every tensor against it.
 * @param weights canonical BFL names (no `model.diffusion_model.` prefix).
 * @throws MissingWeightError when a tensor the architecture needs is absent (no `img_in.weight` or no
 *         `double_blocks.0.img_attn.norm.query_norm.scale`: not a FLUX.1 transformer), WeightShapeError when a
 *         tensor's shape contradicts the others (e.g. a single block's linear1 not 3·hidden + MLP rows), Error when
 *         the file holds tensors FLUX.1 does not have, FluxHintError when the hints do not fit the tensors.
 */
export function detectFluxConfig(weights: WeightSet, hints: FluxHints = {}): FluxConfig {
  const w = weights;
  const [hiddenSize, inChannels] = expectRank(w, 'img_in.weight', 2);
  const contextDim = expectRank(w, 'txt_in.weight', 2)[1];
  const timestepEmbedDim = expectRank(w, 'time_in.in_layer.weight', 2)[1];
  const pooledDim = expectRank(w, 'vector_in.in_layer.weight', 2)[1];
  const outChannels = expectRank(w, 'final_layer.linear.weight', 2)[0];
  const headDim = expectRank(w, 'double_blocks.0.img_attn.norm.query_norm.scale', 1)[0];
  const mlpHiddenDim = expectRank(w, 'double_blocks.0.img_mlp.0.weight', 2)[0];
  const depth = w.maxIndex('double_blocks.') + 1;
  const depthSingleBlocks = w.maxIndex('single_blocks.') + 1;

  if (hiddenSize % headDim !== 0) {
    throw new WeightShapeError('double_blocks.0.img_attn.norm.query_norm.scale', w.where, [headDim], [-1]);
  }
  const heads = hiddenSize / headDim;
  if (hints.headDim !== undefined && hints.headDim !== headDim) {
    throw new FluxHintError(`attention head width ${hints.headDim} does not fit the tensors: the QK-norm scales are ${headDim} wide`);
  }
  if (hints.heads !== undefined && hints.heads !== heads) {
    throw new FluxHintError(`${hints.heads} attention heads do not fit the tensors: hidden size ${hiddenSize} with QK-norm head width ${headDim} has ${heads}`);
  }

  const axesDim = [...(hints.axesDimsRope ?? FLUX1_HINTS.axesDimsRope)];
  const axesSum = axesDim.reduce((a, b) => a + b, 0);
  if (axesDim.some((d) => !Number.isInteger(d) || d <= 0 || d % 2 !== 0) || axesSum !== headDim) {
    throw new FluxHintError(
      `axesDimsRope [${axesDim.join(', ')}] must be positive even widths summing to the head width ${headDim}${hints.axesDimsRope ? '' : ' (the FLUX.1 default fits only 128-wide heads: pass the model config\'s axes_dims_rope)'}`,
    );
  }
  const theta = hints.theta ?? FLUX1_HINTS.theta;
  if (!(theta > 0)) throw new FluxHintError(`theta must be positive, got ${theta}`);

  const config: FluxConfig = {
    hiddenSize,
    heads,
    headDim,
    depth,
    depthSingleBlocks,
    inChannels,
    outChannels,
    contextDim,
    pooledDim,
    timestepEmbedDim,
    mlpHiddenDim,
    mlpRatio: mlpHiddenDim / hiddenSize,
    guidanceEmbed: w.has('guidance_in.in_layer.weight'),
    qkvBias: w.has('double_blocks.0.img_attn.qkv.bias'),
    axesDim,
    theta,
    layerNormEps: 1e-6,
    rmsNormEps: 1e-6,
    timeFactor: 1000,
  };
  checkFluxTensors(config, w);
  return config;
}

/**
 * Check that `weights` holds exactly the tensors of `config` with their shapes.
 * @throws MissingWeightError, WeightShapeError, or Error listing tensors the architecture does not have.
 */
export function checkFluxTensors(config: FluxConfig, weights: WeightSet): void {
  const expected = fluxTensorShapes(config);
  for (const [name, shape] of expected) {
    const actual = weights.shape(name); // MissingWeightError when absent
    if (actual.length !== shape.length || actual.some((d, i) => d !== shape[i])) throw new WeightShapeError(name, weights.where, actual, shape);
  }
  const unused = weights.names().filter((n) => !expected.has(n));
  if (unused.length > 0) {
    throw new Error(
      `${weights.where}: ${unused.length} tensor(s) a FLUX.1 transformer does not have (${unused.slice(0, 3).join(', ')}${unused.length > 3 ? ', …' : ''}): not a FLUX.1 transformer this builder supports`,
    );
  }
}

function expectRank(w: WeightSet, name: string, rank: number): number[] {
  const shape = w.shape(name);
  if (shape.length !== rank) throw new WeightShapeError(name, w.where, shape, new Array(rank).fill(-1));
  return shape;
}
