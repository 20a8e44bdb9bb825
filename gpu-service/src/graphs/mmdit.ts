/**
 * The Stable Diffusion 3.x transformer graph (MMDiT, Esser et al. 2024 "Scaling Rectified Flow Transformers",
 * arXiv:2403.03206; MMDiT-X dual attention of SD3.5 Medium), built from a detected MmditConfig and the
 * checkpoint's tensors under the original names, as ComfyUI comfy/ldm/modules/diffusionmodules/mmdit.py runs it
 * (equal to diffusers `SD3Transformer2DModel` on converted weights):
 *
 *   x   = x_embedder(sample) + crop(pos_embed)                   graphs/mmdit/embeddings.ts
 *   c   = t_embedder(sinusoid(timestep)) + y_embedder(pooled)
 *   ctx = context_embedder(encoder_hidden_states)
 *   for i in 0..depth−1: (ctx, x) = joint_blocks.i(ctx, x, SiLU(c))  graphs/mmdit/joint-block.ts (the last block's
 *                                                                    context stream is pre-only)
 *   x   = final_layer.linear(LayerNorm(x)·(1 + scale) + shift), (shift, scale) = final_layer.adaLN_modulation.1(SiLU(c))
 *   out = unpatchify(x): token (r, c) feature (dy·p + dx)·C + ch → out[ch, r·p + dy, c·p + dx]
 *
 * Graph I/O (the engine's flow-transformer contract, fixtures checkpoints-dit/README.md):
 * - `sample` [batch, inChannels, height, width]: unpacked latents; height and width multiples of patchSize and
 *   at most posEmbedMaxSize·patchSize (the pipeline checks; a run with other sizes fails in onnxruntime instead of computing something else);
 * - `encoder_hidden_states` [batch, sequence, contextDim]: SD3's prompt embeddings (CLIP-L ‖ CLIP-G penultimate
 *   states zero-padded to the T5 width, then the T5 states, along the sequence);
 * - `pooled_projections` [batch, pooledDim]: CLIP-L ‖ CLIP-G text_embeds;
 * - `timestep` float32 [batch]: 1000·σ, not divided (the pipeline passes the scheduler's timesteps; one per row);
 * - output `out_sample` [batch, outChannels, height, width]: the flow velocity v (denoised = sample − σ·v).
 * Floats other than timestep are in the graph's float type. In float16 graphs the sinusoid, every LayerNorm's and
 * RMSNorm's statistics and the standard attention's softmax compute in float32; the rest in float16.
 */
import type { MmditConfig } from '../checkpoints/detect/mmdit-config';
import type { WeightSet } from '../weights/weight-set';
import { Layers, type AttentionKind } from './layers';
import { conditioning, patchEmbedding } from './mmdit/embeddings';
import { jointBlock, modulate, modulation } from './mmdit/joint-block';
import { DataType, OnnxGraph, type FloatType } from './onnx-graph';

/** Graph input and output names (the flow pipeline's transformer runner reads these). */
export const MMDIT_IO = {
  sample: 'sample',
  encoderHiddenStates: 'encoder_hidden_states',
  pooledProjections: 'pooled_projections',
  timestep: 'timestep',
  outSample: 'out_sample',
} as const;

export interface MmditGraphOptions {
  /**
   * Default 'float32' (CPU). 'float16' is for GPU providers; onnxruntime's CPU provider runs it too, casting
   * around the kernels it has only in float32 (MultiHeadAttention), at float16 accuracy.
   */
  floatType?: FloatType;
  /** Default 'contrib' (onnxruntime MultiHeadAttention). */
  attention?: AttentionKind;
}

/**
 * Build the MMDiT graph. Weights stay lazy until `save()`.
 * @throws MissingWeightError when a tensor of the configured architecture is absent; WeightShapeError when one has
 *         a shape the architecture contradicts (the message names the tensor and both shapes); Error when the
 *         WeightSet holds tensors the architecture does not use (another variant: a context processor, an
 *         LayerNorm QK-norm's bias, a last block whose context stream is not pre-only, …).
 */
export function buildMmditGraph(config: MmditConfig, weights: WeightSet, opts: MmditGraphOptions = {}): OnnxGraph {
  const g = new OnnxGraph('mmdit', opts.floatType ?? 'float32');
  const layers = new Layers(g, weights, { attention: opts.attention });
  const c = config;
  const C = c.hiddenSize;
  const p = c.patchSize;

  const sample = g.floatInput(MMDIT_IO.sample, ['batch', c.inChannels, 'height', 'width']);
  const ehs = g.floatInput(MMDIT_IO.encoderHiddenStates, ['batch', 'sequence', c.contextDim]);
  const pooled = g.floatInput(MMDIT_IO.pooledProjections, ['batch', c.pooledDim]);
  const timestep = g.input(MMDIT_IO.timestep, DataType.FLOAT, ['batch']);

  const { tokens, patches } = patchEmbedding(layers, sample, c);
  const cSilu = layers.silu(conditioning(layers, timestep, pooled, c));
  layers.expectShape('context_embedder.weight', [C, c.contextDim]);
  let context: string | null = layers.linear(ehs, 'context_embedder');

  let x = tokens;
  for (let i = 0; i < c.depth; i++) {
    const out = jointBlock(layers, x, context!, cSilu, i, c);
    x = out.x;
    context = out.context;
  }

  const [shift, scale] = modulation(layers, cSilu, 'final_layer.adaLN_modulation.1', 2, C);
  layers.expectShape('final_layer.linear.weight', [p * p * c.outChannels, C]);
  const projected = layers.linear(modulate(layers, layers.layerNormWithoutAffine(x, C, c.layerNormEps), shift, scale), 'final_layer.linear');

  // Unpatchify (mmdit.py `unpatchify`, einsum "nhwpqc->nchpwq"): [B, h·w, p·p·C] → [B, h, w, p, p, C] → [B, C, h, p, w, p].
  const hw = g.node('Shape', [patches], { start: 2, end: 4 });
  const grid = g.node('Reshape', [projected, g.node('Concat', [g.ints('keep_batch', [0]), hw, g.ints('patch_c', [p, p, c.outChannels])], { axis: 0 })]);
  const nchpwq = g.node('Transpose', [grid], { perm: [0, 5, 1, 3, 2, 4] });
  // The sample's own height and width: sizes that are not multiples of p fail here instead of coming out cropped.
  const outShape = g.node('Concat', [g.node('Shape', [sample], { start: 0, end: 1 }), g.ints('out_c', [c.outChannels]), g.node('Shape', [sample], { start: 2, end: 4 })], { axis: 0 });
  g.floatOutput(MMDIT_IO.outSample, g.node('Reshape', [nchpwq, outShape]), ['batch', c.outChannels, 'height', 'width']);

  const used = new Set(g.weights().map((w) => w.name));
  const unused = weights.names().filter((n) => !used.has(n));
  if (unused.length > 0) {
    throw new Error(`${weights.where}: ${unused.length} tensor(s) the detected MMDiT architecture does not use (${unused.slice(0, 3).join(', ')}${unused.length > 3 ? ', …' : ''}): not an SD3 transformer this builder supports`);
  }
  return g;
}
