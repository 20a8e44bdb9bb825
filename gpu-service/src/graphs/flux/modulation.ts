/**
 * FLUX.1's adaptive-LayerNorm modulation and norms (BFL `Modulation`, the affine-free `LayerNorm(eps=1e-6)`s,
 * `RMSNorm` of QKNorm; diffusers `AdaLayerNormZero`, `AdaLayerNormZeroSingle`, `AdaLayerNormContinuous`,
 * `torch.nn.RMSNorm`):
 *
 *   chunks = Linear(SiLU(vec)) split into n equal parts [B, 1, D] (double block: shift, scale, gate of the
 *   attention then of the MLP; single block: shift, scale, gate; final layer: shift, scale)
 *   modulate(x) = LayerNorm(x) · (1 + scale) + shift
 *   rmsNorm(x) = x / √(mean(x²) + eps) · weight, over each head
 *
 * Float16 graphs compute both norms in float32 (ComfyUI's RMSNorm upcasts; x² would overflow float16 for
 * |x| > 256), everything else in the graph's float type. LayerNormalization gets float32 input rather than relying
 * on its float32 stash_type: onnxruntime's CPU float16 kernel measured less precise than the Cast pair (FLUX fixture,
 * float16 vs float32 graph: 1.1e-3 against 7.5e-4 normwise); the pair costs bandwidth only.
 */
import { DataType } from '../onnx-graph';
import type { Layers } from '../layers';
import { toFloat32 } from './rope';

/**
 * `n` modulation chunks of the Linear `${prefix}` applied to SiLU(vec), each [B, 1, D].
 * @param vecSilu SiLU(vec) [B, D], computed once per graph.
 */
export function modulationChunks(layers: Layers, vecSilu: string, prefix: string, n: number, dim: number): string[] {
  const g = layers.g;
  const mod = g.node('Unsqueeze', [layers.linear(vecSilu, prefix), g.ints('mod_axis', [1])]);
  return g.nodeOutputs('Split', [mod, g.ints('mod_split', new Array(n).fill(dim))], { axis: -1 }, { outputs: n });
}

/** LayerNorm over the last axis without affine parameters (eps 1e-6 in FLUX.1), statistics in float32. */
export function layerNormNoAffine(layers: Layers, x: string, ones: string, eps: number): string {
  const g = layers.g;
  const y = g.node('LayerNormalization', [toFloat32(layers, x), ones], { axis: -1, epsilon: eps });
  return g.floatType === 'float16' ? g.node('Cast', [y], { to: DataType.FLOAT16 }) : y;
}

/** LayerNorm(x) · (1 + scale) + shift (scale and shift [B, 1, D] broadcast over tokens). */
export function modulate(layers: Layers, x: string, ones: string, eps: number, shift: string, scale: string): string {
  const g = layers.g;
  const onePlusScale = g.node('Add', [scale, g.floatConstant('one', [], [1])]);
  return g.node('Add', [g.node('Mul', [layerNormNoAffine(layers, x, ones, eps), onePlusScale]), shift]);
}

/**
 * RMSNorm over the last axis of float32 x with the checkpoint's `scale` tensor `name` → float32
 * (torch `rms_norm`: x · rsqrt(mean(x²) + eps) · weight).
 */
export function rmsNorm(layers: Layers, x: string, name: string, eps: number): string {
  const g = layers.g;
  const meanSquare = g.node('ReduceMean', [g.node('Mul', [x, x])], { axes: [-1], keepdims: 1 });
  const rrms = g.node('Reciprocal', [g.node('Sqrt', [g.node('Add', [meanSquare, g.float32Constant('rms_eps', [], [eps])])])]);
  return g.node('Mul', [g.node('Mul', [x, rrms]), toFloat32(layers, layers.param(name))]);
}
