/**
 * Previews of the current x0 estimate while sampling.
 * - "fast": a linear latent→RGB projection at latent resolution (the cheap preview A1111 and ComfyUI show).
 *   Instead of hard-coding SD 1.x's published factors, the projection is measured once per model by
 *   decoding constant latents (zero and each unit channel) — exact for a linear decoder, a good
 *   approximation for a real VAE, and right for any latent space.
 * - "full": a VAE decode of the estimate.
 */
import sharp from 'sharp';
import type { DiffusionModel } from '../models/diffusion-model';
import { encodeImage } from '../images/encode-image';
import type { Tensor } from './tensor';
import { decodeLatents } from './vae';

/** RGB (in [−1, 1] units) = bias + Σ_c latent_c · factors[c]. */
export interface LatentRgbProjection {
  bias: [number, number, number];
  factors: Array<[number, number, number]>;
}

const projections = new WeakMap<DiffusionModel, Promise<LatentRgbProjection>>();

async function measureProjection(model: DiffusionModel): Promise<LatentRgbProjection> {
  const C = model.latentChannels;
  const side = 8;
  const meanOf = async (channel: number): Promise<[number, number, number]> => {
    const z = new Float32Array(C * side * side);
    if (channel >= 0) z.fill(1, channel * side * side, (channel + 1) * side * side);
    const { rgb } = await decodeLatents(model, z, 1, side, side);
    const px = rgb[0];
    const sums = [0, 0, 0];
    for (let p = 0; p < px.length / 3; p++) for (let c = 0; c < 3; c++) sums[c] += px[p * 3 + c];
    const n = px.length / 3;
    return sums.map((s) => s / n / 127.5 - 1) as [number, number, number];
  };
  const bias = await meanOf(-1);
  const factors: Array<[number, number, number]> = [];
  for (let c = 0; c < C; c++) {
    const m = await meanOf(c);
    factors.push([m[0] - bias[0], m[1] - bias[1], m[2] - bias[2]]);
  }
  return { bias, factors };
}

/** The model's latent→RGB projection (measured on first use, cached per loaded model). */
export function latentRgbProjection(model: DiffusionModel): Promise<LatentRgbProjection> {
  let p = projections.get(model);
  if (!p) {
    p = measureProjection(model);
    projections.set(model, p);
  }
  return p;
}

/**
 * Encode a preview of image 0 of the batch, at the job's output size (OpenAI's partial images have the
 * requested size): "fast" projects at latent resolution and scales up bilinearly; "full" decodes with the
 * VAE (scaled only when the pass runs at another size, e.g. a hires fix's first pass).
 * @param denoised float [B, C, h, w] x0 estimate in UNet latent space.
 * @param outputSize the job's width × height in pixels.
 * @returns JPEG bytes of outputSize.
 */
export async function renderPreview(
  model: DiffusionModel,
  mode: 'fast' | 'full',
  denoised: Tensor,
  latentHeight: number,
  latentWidth: number,
  outputSize: { width: number; height: number },
): Promise<Buffer> {
  if (mode === 'full') {
    const { rgb, width, height } = await decodeLatents(model, denoised, 1, latentHeight, latentWidth);
    return previewJpeg(rgb[0], width, height, outputSize, 70);
  }
  const proj = await latentRgbProjection(model);
  const n = latentHeight * latentWidth;
  const rgb = new Uint8Array(n * 3);
  for (let p = 0; p < n; p++) {
    for (let c = 0; c < 3; c++) {
      let v = proj.bias[c];
      for (let k = 0; k < proj.factors.length; k++) v += denoised[k * n + p] * proj.factors[k][c];
      const byte = (v + 1) * 127.5;
      rgb[p * 3 + c] = byte <= 0 ? 0 : byte >= 255 ? 255 : Math.round(byte);
    }
  }
  return previewJpeg(rgb, latentWidth, latentHeight, outputSize, 80);
}

/** RGB pixels of width × height as a JPEG of `size` (bilinear scaling when they differ). */
async function previewJpeg(rgb: Uint8Array, width: number, height: number, size: { width: number; height: number }, quality: number): Promise<Buffer> {
  if (width === size.width && height === size.height) return encodeImage(rgb, width, height, 'jpeg', quality);
  return sharp(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), { raw: { width, height, channels: 3 } })
    .resize(size.width, size.height, { fit: 'fill', kernel: 'linear' })
    .jpeg({ quality })
    .toBuffer();
}
