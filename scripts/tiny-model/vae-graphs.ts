/**
 * vae_decoder/model.onnx and vae_encoder/model.onnx of the tiny model (maps: vae-maps.ts).
 *
 * Decoder: latent_sample float [batch, 4, h, w] (UNSCALED latents, z / scaling_factor)
 *          → sample float [batch, 3, 8h, 8w] in [−1, 1]:
 *          Conv 1×1 (M, b) → Resize ×8 nearest (each latent pixel becomes an 8×8 block) → Clip(−1, 1).
 * Encoder: sample float [batch, 3, H, W] (H, W multiples of 8) → latent_sample float [batch, 4, H/8, W/8]
 *          (the posterior mean, UNSCALED): AveragePool 8×8 stride 8 → Conv 1×1 (P, −P·b).
 * "float" is float32, or float16 for a float16 model.
 */
import { OnnxGraphBuilder } from './onnx-graph-builder';
import { tinyDecoderMap, tinyEncoderMap } from './vae-maps';

/** Builds the VAE decoder graph. */
export function buildVaeDecoderGraph(options: { float16: boolean }): OnnxGraphBuilder {
  const g = new OnnxGraphBuilder('tiny_vae_decoder', options);
  const { matrix, bias } = tinyDecoderMap();
  const latents = g.floatInput('latent_sample', ['batch', 4, 'latent_height', 'latent_width']);
  const weight = g.floatConstant('decoder_weight', [3, 4, 1, 1], matrix.flat());
  const b = g.floatConstant('decoder_bias', [3], bias);
  const rgb = g.node('Conv', [latents, weight, b], { kernel_shape: [1, 1] });
  const scales = g.floatConstant('upsample_scales', [4], [1, 1, 8, 8]);
  const up = g.node('Resize', [rgb, '', scales], {
    mode: 'nearest',
    coordinate_transformation_mode: 'asymmetric',
    nearest_mode: 'floor',
  });
  const lo = g.floatConstant('clip_min', [], [-1]);
  const hi = g.floatConstant('clip_max', [], [1]);
  g.floatOutput('sample', g.node('Clip', [up, lo, hi]), ['batch', 3, 'height', 'width']);
  return g;
}

/** Builds the VAE encoder graph. */
export function buildVaeEncoderGraph(options: { float16: boolean }): OnnxGraphBuilder {
  const g = new OnnxGraphBuilder('tiny_vae_encoder', options);
  const { matrix, bias } = tinyEncoderMap();
  const image = g.floatInput('sample', ['batch', 3, 'height', 'width']);
  const pooled = g.node('AveragePool', [image], { kernel_shape: [8, 8], strides: [8, 8] });
  const weight = g.floatConstant('encoder_weight', [4, 3, 1, 1], matrix.flat());
  const b = g.floatConstant('encoder_bias', [4], bias);
  const latents = g.node('Conv', [pooled, weight, b], { kernel_shape: [1, 1] });
  g.floatOutput('latent_sample', latents, ['batch', 4, 'latent_height', 'latent_width']);
  return g;
}
