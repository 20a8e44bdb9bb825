import type { InputImage } from './resolve-image-input';
import { invalidImage, invalidMask } from './input-errors';
import { inspectPngMask, PngDecodeError, type MaskMode } from './png-mask';

/**
 * Check a mask against its image before any GPU work (issue 6: a wrong-size or empty mask is a 400,
 * never silently a whole-image repaint):
 * - same width × height as the image (header dimensions);
 * - mask_mode 'alpha' needs transparency: a JPEG, or a PNG without alpha channel or tRNS, is refused;
 * - a PNG mask must mark at least one pixel (streamed check, png-mask.ts). JPEG/WebP masks (white
 *   mode) are not decoded at the edge; the GPU service applies the same rule to them (400 'mask').
 * @throws ApiError 400 `invalid_mask` (param "mask"), 400 `invalid_image` for an undecodable PNG.
 */
export async function checkMask(image: InputImage, mask: InputImage, mode: MaskMode): Promise<void> {
  if (mask.width !== image.width || mask.height !== image.height) {
    throw invalidMask(
      `mask must be the same size as image: the mask is ${mask.width}x${mask.height}, the image ${image.width}x${image.height}.`,
    );
  }
  if (mode === 'alpha' && mask.type === 'jpeg') {
    throw invalidMask('mask has no alpha channel (JPEG); with mask_mode "alpha" transparent pixels mark the area to repaint. Send a PNG, or mask_mode "white".');
  }
  if (mask.type !== 'png') return;
  let verdict: Awaited<ReturnType<typeof inspectPngMask>>;
  try {
    verdict = await inspectPngMask(mask.bytes, mode);
  } catch (error) {
    if (error instanceof PngDecodeError) throw invalidImage(`mask is not a decodable PNG (${error.message}).`, 'mask');
    throw error;
  }
  if (verdict === 'no_alpha') {
    throw invalidMask(
      'mask has no alpha channel; with mask_mode "alpha" (the default) its transparent pixels mark the area to repaint. Use mask_mode "white" for black-and-white masks.',
    );
  }
  if (verdict === 'empty') {
    const how = mode === 'alpha' ? 'no pixel is transparent (alpha < 128)' : 'no pixel is white (luma ≥ 128)';
    throw invalidMask(`mask covers nothing: ${how}, so nothing would be repainted. Omit the mask to repaint the whole image.`);
  }
}
