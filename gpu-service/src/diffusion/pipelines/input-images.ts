/**
 * Source images and masks for img2img / inpainting: decoded with sharp under a pixel limit (checked from
 * the header before decoding), then fitted to the job's size.
 *
 * Fitting rule (documented in the README): the image is scaled to COVER width × height (aspect ratio kept)
 * and centre-cropped, as AUTOMATIC1111's "crop and resize" does; the job's width and height are already
 * multiples of 8, so latents line up with pixels.
 */
import sharp from 'sharp';
import { JobInputError } from './job-input-error';

/** Largest source image accepted, in pixels (decompression-bomb guard). */
export const MAX_INPUT_PIXELS = 4096 * 4096;

/**
 * Decode a base64 image and fit it to width × height.
 * @returns RGB interleaved, width × height pixels.
 * @throws JobInputError(param) when the bytes are not an image or exceed MAX_INPUT_PIXELS.
 */
export async function loadInputImage(b64: string, width: number, height: number, param: string): Promise<Uint8Array> {
  const bytes = Buffer.from(b64, 'base64');
  try {
    const meta = await sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS }).metadata();
    if (!meta.width || !meta.height) throw new Error('no dimensions');
    const { data } = await sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS })
      .removeAlpha()
      .resize(width, height, { fit: 'cover', position: 'centre', kernel: 'lanczos3' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } catch (err) {
    throw new JobInputError(param, `${param} is not a decodable PNG, JPEG or WebP image within ${MAX_INPUT_PIXELS} pixels (${(err as Error).message})`);
  }
}

/**
 * Decode a mask to a repaint map: 1 where the image is to be repainted, 0 where it is kept.
 * - mode 'alpha' (OpenAI): transparent pixels (alpha < 128) are repainted; a mask without alpha is an error.
 * - mode 'white': white pixels (luma ≥ 128) are repainted.
 * The mask is fitted to width × height with the same cover/crop rule as the image (nearest neighbour).
 * @returns Uint8Array of 0/1, width × height.
 * @throws JobInputError('mask') for undecodable masks, a missing alpha channel in 'alpha' mode, or a mask that covers nothing.
 */
export async function loadRepaintMask(b64: string, width: number, height: number, mode: 'alpha' | 'white'): Promise<Uint8Array> {
  const bytes = Buffer.from(b64, 'base64');
  let data: Buffer;
  let channels: number;
  try {
    const img = sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS });
    const meta = await img.metadata();
    if (mode === 'alpha' && !meta.hasAlpha) {
      throw new JobInputError('mask', 'mask has no alpha channel; with mask_mode "alpha" transparent pixels mark the area to repaint (use mask_mode "white" for black/white masks)');
    }
    const out = await img
      .ensureAlpha()
      .resize(width, height, { fit: 'cover', position: 'centre', kernel: 'nearest' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    data = out.data;
    channels = out.info.channels;
  } catch (err) {
    if (err instanceof JobInputError) throw err;
    throw new JobInputError('mask', `mask is not a decodable image (${(err as Error).message})`);
  }
  const repaint = new Uint8Array(width * height);
  let count = 0;
  for (let p = 0; p < width * height; p++) {
    const o = p * channels;
    const on = mode === 'alpha' ? data[o + 3] < 128 : 0.299 * data[o] + 0.587 * data[o + 1] + 0.114 * data[o + 2] >= 128;
    repaint[p] = on ? 1 : 0;
    count += repaint[p];
  }
  if (count === 0) throw new JobInputError('mask', 'mask covers nothing: no pixel is marked for repainting');
  return repaint;
}

/**
 * Pixel repaint map → latent-resolution soft mask (mean over each 8×8 block), then a 3×3 box blur to
 * feather the edge. Values in [0, 1], (height/8) × (width/8).
 */
export function latentMask(repaint: Uint8Array, width: number, height: number): Float32Array {
  const h = height / 8;
  const w = width / 8;
  const m = new Float32Array(h * w);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) m[(y >> 3) * w + (x >> 3)] += repaint[y * width + x] / 64;
  const out = new Float32Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      let n = 0;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const yy = y + dy;
          const xx = x + dx;
          if (yy >= 0 && yy < h && xx >= 0 && xx < w) {
            s += m[yy * w + xx];
            n++;
          }
        }
      }
      // Keep fully-masked blocks fully masked so the repainted area is free of the old content.
      out[y * w + x] = Math.max(m[y * w + x], s / n);
    }
  }
  return out;
}
