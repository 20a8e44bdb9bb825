/**
 * FLUX.1's adaptive-LayerNorm modulation (BFL `Modulation` over the affine-free `LayerNorm(eps=1e-6)`s; diffusers
 * `AdaLayerNormZero`, `AdaLayerNormZeroSingle`, `AdaLayerNormContinuous`):
 *
 *   chunks = Linear(SiLU(vec)) split into n equal parts [B, 1, D] (double block: shift, scale, gate of the
 *   attention then of the MLP; single block: shift, scale, gate; final layer: shift, scale)
 *   modulate(x) = LayerNorm(x) · (1 + scale) + shift
 *
 * The LayerNorm's statistics compute in float32 in float16 graphs (Layers.layerNormWithoutAffine).
 */
import type { Layers } from '../layers';

/**
 * `n` modulation chunks of the Linear `${prefix}` applied to SiLU(vec), each [B, 1, D].
 * @param vecSilu SiLU(vec) [B, D], computed once per graph.
 */
export function modulationChunks(layers: Layers, vecSilu: string, prefix: string, n: number, dim: number): string[] {
  const g = layers.g;
  const mod = g.node('Unsqueeze', [layers.linear(vecSilu, prefix), g.ints('mod_axis', [1])]);
  return g.nodeOutputs('Split', [mod, g.ints('mod_split', new Array(n).fill(dim))], { axis: -1 }, { outputs: n });
}

/** LayerNorm(x) · (1 + scale) + shift over x [B, T, D] (scale and shift [B, 1, D] broadcast over tokens). */
export function modulate(layers: Layers, x: string, dim: number, eps: number, shift: string, scale: string): string {
  const g = layers.g;
  const onePlusScale = g.node('Add', [scale, g.floatConstant('one', [], [1])]);
  return g.node('Add', [g.node('Mul', [layers.layerNormWithoutAffine(x, dim, eps), onePlusScale]), shift]);
}
