/**
 * LDM `ResBlock` (openaimodel.py; diffusers `ResnetBlock2D` with the default time_embedding_norm):
 *   h = conv(SiLU(GroupNorm(x)))                       in_layers.0 / in_layers.2 (3×3)
 *   h = h + Linear(SiLU(emb))[:, :, None, None]        emb_layers.1
 *   h = conv(SiLU(GroupNorm(h)))                       out_layers.0 / out_layers.3 (3×3; dropout is inert)
 *   out = skip(x) + h                                  skip_connection: 1×1 conv when channels change, else x
 */
import type { Layers } from '../layers';

export interface ResBlockOptions {
  groups: number;
  eps: number;
}

/**
 * One res block of `inChannels` → `outChannels` at `prefix` (e.g. `input_blocks.1.0`).
 * @param embSilu SiLU(time embedding) [B, timeEmbedDim], shared by every res block.
 * @throws WeightShapeError / MissingWeightError when the block's tensors do not have these channel counts.
 */
export function resBlock(layers: Layers, x: string, prefix: string, embSilu: string, inChannels: number, outChannels: number, timeEmbedDim: number, opts: ResBlockOptions): string {
  const g = layers.g;
  layers.expectShape(`${prefix}.in_layers.0.weight`, [inChannels]);
  layers.expectShape(`${prefix}.in_layers.2.weight`, [outChannels, inChannels, 3, 3]);
  layers.expectShape(`${prefix}.emb_layers.1.weight`, [outChannels, timeEmbedDim]);
  layers.expectShape(`${prefix}.out_layers.0.weight`, [outChannels]);
  layers.expectShape(`${prefix}.out_layers.3.weight`, [outChannels, outChannels, 3, 3]);

  let h = layers.conv2d(layers.silu(layers.groupNorm(x, `${prefix}.in_layers.0`, opts.groups, opts.eps)), `${prefix}.in_layers.2`);
  const e = layers.linear(embSilu, `${prefix}.emb_layers.1`);
  h = g.node('Add', [h, g.node('Unsqueeze', [e, g.ints('emb_hw_axes', [2, 3])])]);
  h = layers.conv2d(layers.silu(layers.groupNorm(h, `${prefix}.out_layers.0`, opts.groups, opts.eps)), `${prefix}.out_layers.3`);

  let skip = x;
  if (inChannels !== outChannels) {
    layers.expectShape(`${prefix}.skip_connection.weight`, [outChannels, inChannels, 1, 1]);
    skip = layers.conv2d(x, `${prefix}.skip_connection`);
  }
  return g.node('Add', [skip, h]);
}
