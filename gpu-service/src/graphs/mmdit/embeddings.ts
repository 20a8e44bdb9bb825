/**
 * The MMDiT's input embeddings (ComfyUI comfy/ldm/modules/diffusionmodules/mmdit.py `MMDiT.forward`; diffusers
 * `PatchEmbed` with pos_embed_max_size and `CombinedTimestepTextProjEmbeddings`):
 *   tokens = x_embedder.proj(sample) (p×p conv, stride p) as [B, h·w, hidden]  +  pos_embed centre-cropped to (h, w)
 *   c      = t_embedder(sinusoid₂₅₆(timestep))  +  y_embedder(pooled_projections)     (Linear → SiLU → Linear each)
 */
import type { MmditConfig } from '../../checkpoints/detect/mmdit-config';
import type { Layers } from '../layers';
import { sinusoidalEmbedding, toGraphFloat } from '../unet/time-embedding';

/**
 * Patchify `sample` [B, inChannels, H, W] → `tokens` [B, (H/p)(W/p), hidden] (row-major over the patch grid) with
 * the positional embedding added, and `patches` [B, hidden, H/p, W/p] (whose shape later unpatchifies).
 *
 * pos_embed is the stored [1, M², hidden] grid (row r, column c at r·M + c); the crop is rows
 * ⌊(M − h)/2⌋ … + h and columns ⌊(M − w)/2⌋ … + w (`cropped_pos_embed` in both upstreams), computed from the
 * latent's size at run time. Latents larger than M·p have no embedding upstream (an assertion there); here the
 * crop then has fewer than h·w rows and the Add fails (a Reshape cannot be the check: onnxruntime's ReshapeFusion
 * rewrites a computed target shape into one with −1).
 * @throws WeightShapeError when x_embedder.proj or pos_embed do not have the config's shapes.
 */
export function patchEmbedding(layers: Layers, sample: string, c: MmditConfig): { tokens: string; patches: string } {
  const g = layers.g;
  const [p, C, M] = [c.patchSize, c.hiddenSize, c.posEmbedMaxSize];
  layers.expectShape('x_embedder.proj.weight', [C, c.inChannels, p, p]);
  layers.expectShape('pos_embed', [1, M * M, C]);
  const patches = layers.conv2d(sample, 'x_embedder.proj', { stride: p, pads: [0, 0, 0, 0] });
  const tokens = layers.toTokens(patches);

  const grid = g.node('Reshape', [layers.param('pos_embed'), g.ints('pos_grid', [M, M, C])]);
  const hw = g.node('Shape', [patches], { start: 2, end: 4 });
  // Clamped at 0: a negative start would count from the end and could crop a single row and column, which
  // would broadcast over every token.
  const start = g.node('Max', [g.node('Div', [g.node('Sub', [g.ints('pos_max', [M, M]), hw]), g.ints('two', [2, 2])]), g.ints('zeros', [0, 0])]);
  const crop = g.node('Slice', [grid, start, g.node('Add', [start, hw]), g.ints('pos_axes', [0, 1])]);
  return { tokens: layers.add(tokens, g.node('Reshape', [crop, g.ints('pos_tokens', [1, -1, C])])), patches };
}

/**
 * The conditioning vector c [B, hidden] of timestep float32 [B] (1000σ, fractional) and pooled [B, pooledDim]:
 * the 256-wide sinusoid (cos first, float32) → t_embedder.mlp.0 → SiLU → mlp.2, plus y_embedder.mlp.0 → SiLU → mlp.2.
 * @throws WeightShapeError when the embedders do not have the config's widths.
 */
export function conditioning(layers: Layers, timestep: string, pooled: string, c: MmditConfig): string {
  const g = layers.g;
  const C = c.hiddenSize;
  layers.expectShape('t_embedder.mlp.0.weight', [C, c.timestepEmbedDim]);
  layers.expectShape('t_embedder.mlp.2.weight', [C, C]);
  layers.expectShape('y_embedder.mlp.0.weight', [C, c.pooledDim]);
  layers.expectShape('y_embedder.mlp.2.weight', [C, C]);
  const t = g.node('Unsqueeze', [timestep, g.ints('t_axis', [1])]);
  const sinusoid = toGraphFloat(layers, sinusoidalEmbedding(layers, t, c.timestepEmbedDim));
  const temb = layers.linear(layers.silu(layers.linear(sinusoid, 't_embedder.mlp.0')), 't_embedder.mlp.2');
  const yemb = layers.linear(layers.silu(layers.linear(pooled, 'y_embedder.mlp.0')), 'y_embedder.mlp.2');
  return layers.add(temb, yemb);
}
