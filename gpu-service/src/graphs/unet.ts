/**
 * The Stable Diffusion UNet graph (LDM `openaimodel.UNetModel`, as ComfyUI runs it; equal to diffusers
 * `UNet2DConditionModel` on converted weights) built from a detected UnetConfig and the checkpoint's tensors
 * under LDM names:
 *
 *   emb = time_embed(sinusoid(timestep))  [+ label_emb(concat(text_embeds, sinusoid(time_ids)))  SDXL]
 *   h = input_blocks.0 (conv_in); per level: res blocks (+ transformers), then a stride-2 downsampler
 *   (conv 3×3, padding 1) except at the lowest level; every input block's output is kept as a skip
 *   middle_block: res, transformer, res
 *   output_blocks, lowest level first: concat(h, skip) → res (+ transformer); the level's last block
 *   upsamples (nearest to the next skip's size, conv 3×3) except at the top level
 *   out: GroupNorm → SiLU → conv 3×3
 *
 * Graph I/O (the engine's UNet contract): `sample` [batch, in_channels, height, width], `timestep` float32 [batch]
 * (fractional allowed), `encoder_hidden_states` [batch, sequence, context_dim]; with label_emb also
 * `text_embeds` [batch, pooled] and `time_ids` float32 [batch, time_ids] (pooled + time_ids × d must equal
 * label_emb's input width); output `out_sample` [batch, out_channels, height, width] (ε or v, whatever the
 * model predicts). Floats other than timestep/time_ids are in the graph's float type; the sinusoids,
 * GroupNorm statistics and the standard attention's softmax compute in float32.
 */
import { DataType, OnnxGraph, type FloatType } from './onnx-graph';
import { Layers, type AttentionKind } from './layers';
import type { UnetConfig } from '../checkpoints/detect/unet-config';
import type { WeightSet } from '../weights/weight-set';
import { resBlock } from './unet/resblock';
import { spatialTransformer, type SpatialTransformerOptions } from './unet/spatial-transformer';
import { labelEmbedding, timeEmbedding } from './unet/time-embedding';

/** Graph input and output names (the pipeline's UNet runner reads these). */
export const UNET_IO = {
  sample: 'sample',
  timestep: 'timestep',
  encoderHiddenStates: 'encoder_hidden_states',
  textEmbeds: 'text_embeds',
  timeIds: 'time_ids',
  outSample: 'out_sample',
} as const;

export interface UnetGraphOptions {
  /** Default 'float32' (CPU); 'float16' for GPU providers. */
  floatType?: FloatType;
  /** Default 'contrib' (onnxruntime MultiHeadAttention). */
  attention?: AttentionKind;
}

/**
 * Build the UNet graph. Weights stay lazy until `save()`.
 * @throws MissingWeightError when a tensor of the configured architecture is absent; WeightShapeError when one
 *         has a shape the architecture contradicts (the message names the tensor and both shapes); Error when
 *         the WeightSet holds tensors the architecture does not use (another kind of network).
 */
export function buildUnetGraph(config: UnetConfig, weights: WeightSet, opts: UnetGraphOptions = {}): OnnxGraph {
  const g = new OnnxGraph('unet', opts.floatType ?? 'float32');
  const layers = new Layers(g, weights, { attention: opts.attention });
  const c = config;

  const sample = g.floatInput(UNET_IO.sample, ['batch', c.inChannels, 'height', 'width']);
  const timestep = g.input(UNET_IO.timestep, DataType.FLOAT, ['batch']);
  const context = c.contextDim === null ? null : g.floatInput(UNET_IO.encoderHiddenStates, ['batch', 'sequence', c.contextDim]);

  layers.expectShape('time_embed.0.weight', [c.timeEmbedDim, c.timestepEmbedDim]);
  layers.expectShape('time_embed.2.weight', [c.timeEmbedDim, c.timeEmbedDim]);
  let emb = timeEmbedding(layers, timestep, c.timestepEmbedDim);
  if (c.adm) {
    const textEmbeds = g.floatInput(UNET_IO.textEmbeds, ['batch', 'pooled']);
    const timeIds = g.input(UNET_IO.timeIds, DataType.FLOAT, ['batch', 'time_ids']);
    layers.expectShape('label_emb.0.0.weight', [c.timeEmbedDim, c.adm.inChannels]);
    layers.expectShape('label_emb.0.2.weight', [c.timeEmbedDim, c.timeEmbedDim]);
    emb = layers.add(emb, labelEmbedding(layers, textEmbeds, timeIds, c.adm.timeIdEmbedDim));
  }
  const embSilu = layers.silu(emb);

  const res = (x: string, prefix: string, inCh: number, outCh: number) =>
    resBlock(layers, x, prefix, embSilu, inCh, outCh, c.timeEmbedDim, { groups: c.groupNormGroups, eps: c.normEps });
  const transformer = (x: string, prefix: string, channels: number, depth: number, heads: number) => {
    if (depth === 0) return x;
    if (context === null) throw new Error(`${weights.where}: ${prefix} is a transformer but the UNet has no cross-attention width`);
    const t: SpatialTransformerOptions = {
      depth,
      heads,
      contextDim: c.contextDim!,
      useLinear: c.useLinearInTransformer,
      groups: c.groupNormGroups,
      normEps: c.transformerNormEps,
      layerNormEps: c.layerNormEps,
    };
    return spatialTransformer(layers, x, context, prefix, channels, t);
  };

  // Input path.
  layers.expectShape('input_blocks.0.0.weight', [c.modelChannels, c.inChannels, 3, 3]);
  let h = layers.conv2d(sample, 'input_blocks.0.0');
  const skips: Array<{ value: string; channels: number }> = [{ value: h, channels: c.modelChannels }];
  let ch = c.modelChannels;
  let block = 1;
  c.levels.forEach((level, i) => {
    for (let j = 0; j < level.numResBlocks; j++, block++) {
      h = res(h, `input_blocks.${block}.0`, ch, level.channels);
      ch = level.channels;
      h = transformer(h, `input_blocks.${block}.1`, ch, level.transformerDepth[j], level.heads);
      skips.push({ value: h, channels: ch });
    }
    if (i < c.levels.length - 1) {
      layers.expectShape(`input_blocks.${block}.0.op.weight`, [ch, ch, 3, 3]);
      h = layers.conv2d(h, `input_blocks.${block}.0.op`, { stride: 2, pads: [1, 1, 1, 1] });
      skips.push({ value: h, channels: ch });
      block++;
    }
  });

  // Middle block.
  if (c.middle) {
    h = res(h, 'middle_block.0', ch, ch);
    if (c.middle.transformerDepth > 0) {
      h = transformer(h, 'middle_block.1', ch, c.middle.transformerDepth, c.middle.heads);
      h = res(h, 'middle_block.2', ch, ch);
    }
  }

  // Output path, lowest level first.
  block = 0;
  for (let i = c.levels.length - 1; i >= 0; i--) {
    const level = c.levels[i];
    for (let j = 0; j <= level.numResBlocks; j++, block++) {
      const skip = skips.pop()!;
      const prefix = `output_blocks.${block}`;
      h = res(layers.concat([h, skip.value], 1), `${prefix}.0`, ch + skip.channels, level.channels);
      ch = level.channels;
      const depth = level.transformerDepthOutput[j];
      h = transformer(h, `${prefix}.1`, ch, depth, level.heads);
      if (i > 0 && j === level.numResBlocks) {
        const conv = `${prefix}.${depth > 0 ? 2 : 1}.conv`;
        layers.expectShape(`${conv}.weight`, [ch, ch, 3, 3]);
        h = layers.conv2d(layers.upsampleNearestLike(h, skips[skips.length - 1].value), conv);
      }
    }
  }

  layers.expectShape('out.0.weight', [ch]);
  layers.expectShape('out.2.weight', [c.outChannels, ch, 3, 3]);
  const out = layers.conv2d(layers.silu(layers.groupNorm(h, 'out.0', c.groupNormGroups, c.normEps)), 'out.2');
  g.floatOutput(UNET_IO.outSample, out, ['batch', c.outChannels, 'height', 'width']);

  // A tensor the graph does not use belongs to an architecture this builder does not know (SVD's time_stack,
  // a ControlNet's input_hint_block, …): refuse rather than silently compute a different network.
  const used = new Set(g.weights().map((x) => x.name));
  const unused = weights.names().filter((n) => !used.has(n));
  if (unused.length > 0) {
    throw new Error(`${weights.where}: ${unused.length} tensor(s) the detected UNet architecture does not use (${unused.slice(0, 3).join(', ')}${unused.length > 3 ? ', …' : ''}): not a UNet this builder supports`);
  }
  return g;
}
