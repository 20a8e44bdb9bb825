/**
 * The hires-fix upscaler stage: the first pass's decoded images brought to the target size by an upscaler model,
 * as AUTOMATIC1111 does for non-latent upscalers (modules/upscaler.py `Upscaler.upscale`): apply the network
 * (each time ×s, in tiles: upscale-tiles.ts) until the image is at least the target size on both axes, at most
 * 3 times, then resize to exactly the target with Lanczos (sharp `lanczos3`) when it is not already that size.
 * The caller re-encodes the result with the VAE for the second pass.
 */
import sharp from 'sharp';
import type { OnnxModel } from '../onnx/session';
import type { StageImage } from './image-tensor';
import type { PostprocessSidecar } from './postprocess-interfaces';
import { asModelFailure } from './postprocess-model-error';
import { upscaleTiled, type TileOptions } from './upscale-tiles';

/** At most this many network passes per image (AUTOMATIC1111's loop). */
export const MAX_UPSCALE_PASSES = 3;

/** An upscaler model opened for a job. */
export interface ImageUpscaler {
  /** The model's id (for errors). */
  id: string;
  session: OnnxModel;
  sidecar: PostprocessSidecar;
  tiles: TileOptions;
}

/**
 * Upscale one RGB image to `targetWidth` × `targetHeight` pixels (see the module comment).
 * @param signal checked between tiles.
 * @throws PostprocessModelError naming hires_fix.upscale_model when the network run fails (upscale-tiles.ts); the
 *         signal's reason when aborted.
 */
export async function upscaleToTarget(upscaler: ImageUpscaler, image: StageImage, targetWidth: number, targetHeight: number, signal?: AbortSignal): Promise<StageImage> {
  let img: StageImage = { rgb: image.rgb, width: image.width, height: image.height };
  for (let pass = 0; pass < MAX_UPSCALE_PASSES; pass++) {
    if (img.width >= targetWidth && img.height >= targetHeight) break;
    const from = img;
    const up = await asModelFailure('hires_fix.upscale_model', `the upscaler model "${upscaler.id}"`, () => upscaleTiled(upscaler.session, upscaler.sidecar, from, upscaler.tiles, signal), signal);
    const grew = up.width !== img.width || up.height !== img.height;
    img = { rgb: up.rgb, width: up.width, height: up.height };
    if (!grew) break;
  }
  if (img.width === targetWidth && img.height === targetHeight) return img;
  const resized = await sharp(Buffer.from(img.rgb.buffer, img.rgb.byteOffset, img.rgb.byteLength), { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(targetWidth, targetHeight, { fit: 'fill', kernel: 'lanczos3' })
    .raw()
    .toBuffer();
  return { rgb: new Uint8Array(resized.buffer, resized.byteOffset, resized.byteLength), width: targetWidth, height: targetHeight };
}
