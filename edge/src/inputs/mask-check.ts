import type { InputImage } from './resolve-image-input';
import { invalidImage, invalidMask } from './input-errors';
import { inspectPngMask, PngDecodeError, type MaskMode } from './png-mask';

/**
 * The cheap part of the mask checks, from the headers alone (run it with the other input checks,
 * before the rate limiter): same width × height as the image; mask_mode 'alpha' needs transparency,
 * so a JPEG mask is refused.
 * @throws ApiError 400 `invalid_mask` (param "mask").
 */
export function checkMaskHeader(image: InputImage, mask: InputImage, mode: MaskMode): void {
  if (mask.width !== image.width || mask.height !== image.height) {
    throw invalidMask(
      `mask must be the same size as image: the mask is ${mask.width}x${mask.height}, the image ${image.width}x${image.height}.`,
    );
  }
  if (mode === 'alpha' && mask.type === 'jpeg') {
    throw invalidMask('mask has no alpha channel (JPEG); with mask_mode "alpha" transparent pixels mark the area to repaint. Send a PNG, or mask_mode "white".');
  }
}

/**
 * The pixel part of the mask checks (issue 6: an empty mask is a 400, never silently a whole-image
 * repaint; issue 10 item 5: bounded CPU, so run it only AFTER the rate limiter admitted the request):
 * a PNG mask must have transparency in alpha mode and mark at least one pixel, read by the streamed,
 * budgeted scan of png-mask.ts (at most MASK_SCAN_MAX_BYTES of pixel data, ~10–30 ms of CPU). When the
 * budget runs out before a marked pixel, and for JPEG/WebP masks (white mode), the edge does not
 * decide: the GPU service applies the same rule when it decodes the mask (400 naming the mask).
 * @throws ApiError 400 `invalid_mask` (param "mask"), 400 `invalid_image` for an undecodable PNG.
 */
export async function checkMaskPixels(mask: InputImage, mode: MaskMode): Promise<void> {
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
