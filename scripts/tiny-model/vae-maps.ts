/**
 * The tiny model's VAE as plain maths (float64): the decoder's latent→RGB map, the encoder's
 * inverse map, and the latents of named colours. The ONNX graphs (vae-graphs.ts) are built from
 * these numbers, and tests use them as the closed form.
 *
 * Conventions (as diffusers' AutoencoderKL): the decoder takes UNSCALED latents
 * l = z / scaling_factor, where z is what the UNet sees; RGB is in [−1, 1] (0 = mid grey).
 */
import { rightPseudoInverse } from './pseudo-inverse';
import { TINY_DECODER_BIAS, TINY_DECODER_MATRIX, TINY_SCALING_FACTOR } from './constants';

/** Decoder map: rgb = clip(matrix · l + bias, −1, 1); matrix 3×4 (rows RGB), bias length 3. */
export interface TinyDecoderMap {
  matrix: number[][];
  bias: number[];
}

/** Encoder map: l = matrix · avgpool8(rgb) + bias; matrix 4×3 (= right pseudo-inverse P of M), bias = −P·b. */
export interface TinyEncoderMap {
  matrix: number[][];
  bias: number[];
}

/** The decoder's 1×1 map (copies of TINY_DECODER_MATRIX / TINY_DECODER_BIAS). */
export function tinyDecoderMap(): TinyDecoderMap {
  return { matrix: TINY_DECODER_MATRIX.map((row) => [...row]), bias: [...TINY_DECODER_BIAS] };
}

/**
 * The encoder's 1×1 map: P = Mᵀ(MMᵀ)⁻¹ and −P·b, so encode(decode(l)) = P·M·l = l for every l in
 * the row space of M whose decoded colour is not clipped (the 1-dimensional null space of M is
 * invisible in RGB and cannot come back).
 */
export function tinyEncoderMap(): TinyEncoderMap {
  const p = rightPseudoInverse(TINY_DECODER_MATRIX);
  const bias = p.map((row) => -row.reduce((sum, v, j) => sum + v * TINY_DECODER_BIAS[j], 0));
  return { matrix: p, bias };
}

/** Decoded RGB in [−1, 1] of one UNSCALED latent pixel l (length 4): clip(M·l + b, −1, 1). */
export function tinyDecodeLatentPixel(l: ArrayLike<number>): number[] {
  return TINY_DECODER_MATRIX.map((row, i) => {
    const v = row.reduce((sum, m, j) => sum + m * l[j], TINY_DECODER_BIAS[i]);
    return Math.min(1, Math.max(-1, v));
  });
}

/** Unscaled latent l (length 4) of an RGB colour in [−1, 1]: P·(rgb − b). */
export function tinyEncodeRgbPixel(rgb: ArrayLike<number>): number[] {
  const { matrix, bias } = tinyEncoderMap();
  return matrix.map((row, i) => row.reduce((sum, p, j) => sum + p * rgb[j], bias[i]));
}

/**
 * The SCALED latent z (UNet space, length 4) that decodes exactly to an sRGB byte colour:
 * z = scaling_factor · P·(rgb/255·2 − 1 − b). This is what colour words carry in the text
 * embedding, so decoder(z / scaling_factor) is the named colour.
 */
export function tinyColourLatent(rgbBytes: readonly [number, number, number]): number[] {
  const rgb = rgbBytes.map((v) => (v / 255) * 2 - 1);
  return tinyEncodeRgbPixel(rgb).map((v) => v * TINY_SCALING_FACTOR);
}

/** The SCALED latent that decodes to mid grey (RGB 0 in [−1, 1]): the mean when a prompt has no colour word. */
export function tinyGreyLatent(): number[] {
  return tinyEncodeRgbPixel([0, 0, 0]).map((v) => v * TINY_SCALING_FACTOR);
}
