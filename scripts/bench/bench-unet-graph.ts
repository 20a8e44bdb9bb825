/**
 * unet/model.onnx of the "bench-512" benchmark model: a small but real-cost Stable-Diffusion-shaped UNet
 * with random, deterministic weights. Its output is meaningless as an image model; it exists so the
 * benchmark measures the pipeline against onnxruntime work of a realistic size (a few GFLOP per image
 * per step at 512×512) instead of the analytic tiny model's handful of element-wise ops.
 *
 * Inputs (Optimum SD export names and types, as the tiny model):
 *   sample                float32 [batch, 4, h, w]    (h = w = 64 for 512×512)
 *   timestep              int64   [steps]             (steps = 1 or batch)
 *   encoder_hidden_states float32 [batch, sequence, BENCH_CONTEXT_DIM]
 * Output:
 *   out_sample            float32 [batch, 4, h, w]
 *
 * Layout (diffusers UNet2DConditionModel, one level down): conv_in 4→C0 · ResBlock C0 · stride-2 conv
 * C0→C1 · ResBlock C1 · spatial transformer at h/2 × w/2 (self-attention over the (h/2)(w/2) tokens and
 * cross-attention to the text states, 4 heads) · ×2 nearest upsample + conv C1→C0 · skip add · ResBlock
 * C0 · GroupNorm, SiLU, conv_out C0→4. The output is `sample + residual` with a near-zero conv_out, so
 * ε̂ ≈ the scaled input: the sampler's latents shrink smoothly toward 0 and every value stays finite.
 */
import { ELEM, OnnxGraphBuilder } from '../tiny-model/onnx-graph-builder';
import { TINY_HIDDEN_SIZE } from '../tiny-model/constants';
import { GraphLayers } from './graph-layers';

/** Width of the text states the UNet cross-attends to: the tiny text encoder's hidden size (32). */
export const BENCH_CONTEXT_DIM = TINY_HIDDEN_SIZE;

/** Channel widths and layout of the benchmark UNet. */
export interface BenchUnetShape {
  /** Channels at full latent resolution. */
  c0: number;
  /** Channels at half latent resolution (where the attention runs). */
  c1: number;
  /** Attention heads (c1 must be divisible by it). */
  heads: number;
  /** Sinusoidal timestep-embedding width before its MLP. */
  timestepDim: number;
  /** Seed of the weights. */
  seed: number;
}

/** The bench-512 shape: about 6–7 GFLOP per UNet run with CFG (2 images) at 64×64 latents. */
export const BENCH_UNET_SHAPE: Readonly<BenchUnetShape> = { c0: 128, c1: 256, heads: 4, timestepDim: 128, seed: 512 };

/**
 * Builds the benchmark UNet graph (see the module docstring).
 * @throws Error when c1 is not divisible by heads or timestepDim is odd.
 */
export function buildBenchUnetGraph(shape: BenchUnetShape = BENCH_UNET_SHAPE): OnnxGraphBuilder {
  const { c0, c1, heads, timestepDim } = shape;
  if (c1 % heads !== 0) throw new Error(`bench UNet: c1 = ${c1} is not divisible by heads = ${heads}`);
  if (timestepDim % 2 !== 0) throw new Error(`bench UNet: timestepDim = ${timestepDim} must be even`);
  const g = new OnnxGraphBuilder('bench_unet');
  const L = new GraphLayers(g, shape.seed);
  const sample = g.floatInput('sample', ['batch', 4, 'height', 'width']);
  const timestep = g.input('timestep', ELEM.INT64, ['steps']);
  const context = g.floatInput('encoder_hidden_states', ['batch', 'sequence', BENCH_CONTEXT_DIM]);

  // Timestep MLP (diffusers TimestepEmbedding): linear, SiLU, linear → [steps, 4·c0].
  const tembDim = 4 * c0;
  const sinusoid = L.timestepEmbedding(g.node('Cast', [timestep], { to: ELEM.FLOAT }), timestepDim);
  const temb = L.linear(L.silu(L.linear(sinusoid, timestepDim, tembDim)), tembDim, tembDim);

  const x0 = L.conv(sample, 4, c0);
  const skip = L.resBlock(x0, c0, c0, temb, tembDim);
  let h = L.conv(skip, c0, c1, 3, 2); // Downsample2D: stride-2 conv
  h = L.resBlock(h, c1, c1, temb, tembDim);
  h = L.spatialTransformer(h, c1, context, BENCH_CONTEXT_DIM, heads);
  h = L.conv(L.upsample2x(h), c1, c0);
  h = g.node('Add', [h, skip]);
  h = L.resBlock(h, c0, c0, temb, tembDim);
  const residual = L.conv(L.silu(L.groupNorm(h, c0)), c0, 4, 3, 1, 0.01);
  g.floatOutput('out_sample', g.node('Add', [sample, residual]), ['batch', 4, 'height', 'width']);
  return g;
}
