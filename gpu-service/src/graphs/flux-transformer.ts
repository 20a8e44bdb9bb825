/**
 * The FLUX.1 transformer graph (BFL `flux.model.Flux`, as ComfyUI comfy/ldm/flux/model.py runs it; equal to
 * diffusers `FluxTransformer2DModel` on converted weights) built from a detected FluxConfig and the checkpoint's
 * tensors under BFL names (checkpoints/detect/flux-config.ts):
 *
 *   img = img_in(hidden_states);  txt = txt_in(encoder_hidden_states)
 *   vec = time_in(sinusoid(1000·timestep)) [+ guidance_in(sinusoid(1000·guidance))  dev] + vector_in(pooled_projections)
 *   RoPE tables from ids = [txt_ids; img_ids]                                       (graphs/flux/rope.ts)
 *   depth × double-stream block (img, txt);  x = [txt; img];  depthSingleBlocks × single-stream block (x)
 *   out_sample = final_layer(x[:, L:])                                              (graphs/flux/blocks.ts)
 * time_in / vector_in / guidance_in are MLPEmbedders (in_layer → SiLU → out_layer); the sinusoid is the
 * 256-channel cos-first embedding (BFL `timestep_embedding`, max period 10000).
 *
 * Graph I/O:
 * - in `hidden_states` [batch, image_tokens, inChannels]: packed latents (2×2 patches of the 16-channel latent,
 *   token r·(W/2) + c, feature ch·4 + dy·2 + dx; diffusers `_pack_latents`);
 * - in `encoder_hidden_states` [batch, sequence, contextDim]: T5 last_hidden_state;
 * - in `pooled_projections` [batch, pooledDim]: CLIP-L pooler_output;
 * - in `timestep` float32 [batch]: σ ∈ [0, 1] (FluxPipeline's t/1000), multiplied by 1000 inside;
 * - in `img_ids` float32 [image_tokens, n_axes] rows (0, r, c); `txt_ids` float32 [sequence, n_axes] (zeros):
 *   one id set for the whole batch, as diffusers' 2-D ids;
 * - in `guidance` float32 [batch] (the guidance scale, e.g. 3.5; multiplied by 1000 inside) only when the model
 *   has `guidance_in` (FLUX.1-dev style);
 * - out `out_sample` [batch, image_tokens, outChannels]: the flow velocity, packed like hidden_states.
 * Floats other than timestep, guidance and ids are in the graph's float type. Float32 inside float16 graphs: the
 * timestep/guidance sinusoids, RoPE tables and rotation, QK RMSNorm, LayerNorm statistics and the standard
 * attention's softmax. Attention runs over [txt; img] with scale 1/√headDim and no mask (upstream passes none).
 *
 * Exactness note: the sinusoid's arguments reach 1000·σ rad in float32 (as upstream computes them), so one ulp in
 * one of the 128 frequencies moves the output by up to 3e-5 on the fixture. timestepFrequencies rounds each
 * exp correctly; the fixture's torch (CPU, MKL vsExp) rounds entry 12 (0.479 ulp from a tie) the other way, which
 * is most of this graph's 1.0e-5 error against it (2.2e-6 with that entry matched, in a float64 re-computation).
 */
import { checkFluxTensors, type FluxConfig } from '../checkpoints/detect/flux-config';
import type { WeightSet } from '../weights/weight-set';
import { Layers, type AttentionKind } from './layers';
import { DataType, OnnxGraph, type FloatType } from './onnx-graph';
import { doubleStreamBlock, finalLayer, singleStreamBlock, type FluxBlockContext } from './flux/blocks';
import { ropeTables } from './flux/rope';
import { sinusoidalEmbedding, toGraphFloat } from './unet/time-embedding';

/** Graph input and output names. */
export const FLUX_TRANSFORMER_IO = {
  hiddenStates: 'hidden_states',
  encoderHiddenStates: 'encoder_hidden_states',
  pooledProjections: 'pooled_projections',
  timestep: 'timestep',
  imgIds: 'img_ids',
  txtIds: 'txt_ids',
  guidance: 'guidance',
  outSample: 'out_sample',
} as const;

export interface FluxTransformerGraphOptions {
  /**
   * Compute type. Default 'float32' (CPU). 'float16' is for GPU providers; onnxruntime's CPU provider runs it too
   * by casting around its float32-only kernels.
   */
  floatType?: FloatType;
  /** How attention is emitted (layers.ts). Default 'contrib' (onnxruntime MultiHeadAttention). */
  attention?: AttentionKind;
  /** Keep Q4_0 / Q8_0 GGUF Linear weights quantized (MatMulNBits): true both, false none. Default: GGUF_KEEP_QUANTIZED. */
  keepQuantized?: boolean;
}

/**
 * Build the FLUX.1 transformer graph. Weights stay lazy until `save()`.
 * @throws MissingWeightError / WeightShapeError when `weights` lacks a tensor of `config` or has another shape,
 *         Error when it holds tensors the architecture does not have (checkFluxTensors).
 */
export function buildFluxTransformerGraph(config: FluxConfig, weights: WeightSet, opts: FluxTransformerGraphOptions = {}): OnnxGraph {
  checkFluxTensors(config, weights);
  const g = new OnnxGraph('flux_transformer', opts.floatType ?? 'float32');
  const layers = new Layers(g, weights, { attention: opts.attention, keepQuantized: opts.keepQuantized });
  const c = config;
  const io = FLUX_TRANSFORMER_IO;
  const axes = c.axesDim.length;

  const hiddenStates = g.floatInput(io.hiddenStates, ['batch', 'image_tokens', c.inChannels]);
  const encoderHiddenStates = g.floatInput(io.encoderHiddenStates, ['batch', 'sequence', c.contextDim]);
  const pooled = g.floatInput(io.pooledProjections, ['batch', c.pooledDim]);
  const timestep = g.input(io.timestep, DataType.FLOAT, ['batch']);
  const imgIds = g.input(io.imgIds, DataType.FLOAT, ['image_tokens', axes]);
  const txtIds = g.input(io.txtIds, DataType.FLOAT, ['sequence', axes]);
  const guidance = c.guidanceEmbed ? g.input(io.guidance, DataType.FLOAT, ['batch']) : null;

  // vec: timestep (+ guidance) and pooled text embeddings, summed in upstream's order.
  const mlpEmbedder = (x: string, prefix: string) => layers.linear(layers.silu(layers.linear(x, `${prefix}.in_layer`)), `${prefix}.out_layer`);
  const embedScalar = (x: string, prefix: string) => {
    const scaled = g.node('Mul', [g.node('Unsqueeze', [x, g.ints('t_axis', [1])]), g.float32Constant('time_factor', [], [c.timeFactor])]);
    return mlpEmbedder(toGraphFloat(layers, sinusoidalEmbedding(layers, scaled, c.timestepEmbedDim)), prefix);
  };
  let vec = embedScalar(timestep, 'time_in');
  if (guidance) vec = layers.add(vec, embedScalar(guidance, 'guidance_in'));
  vec = layers.add(vec, mlpEmbedder(pooled, 'vector_in'));

  const ctx: FluxBlockContext = {
    layers,
    config: c,
    vecSilu: layers.silu(vec),
    rope: ropeTables(layers, g.node('Concat', [txtIds, imgIds], { axis: 0 }), c.axesDim, c.theta),
  };

  let img = layers.linear(hiddenStates, 'img_in');
  let txt = layers.linear(encoderHiddenStates, 'txt_in');
  for (let i = 0; i < c.depth; i++) ({ img, txt } = doubleStreamBlock(ctx, img, txt, `double_blocks.${i}`));

  let x = g.node('Concat', [txt, img], { axis: 1 });
  for (let i = 0; i < c.depthSingleBlocks; i++) x = singleStreamBlock(ctx, x, `single_blocks.${i}`);
  const txtLen = g.node('Shape', [txt], { start: 1, end: 2 });
  img = g.node('Slice', [x, txtLen, g.ints('to_end', [Number.MAX_SAFE_INTEGER]), g.ints('token_axis', [1])]);

  g.floatOutput(io.outSample, finalLayer(ctx, img), ['batch', 'image_tokens', c.outChannels]);
  return g;
}
