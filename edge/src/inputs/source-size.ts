import { MAX_IMAGE_SIDE, MIN_IMAGE_SIDE, SIZE_MULTIPLE, type ImageSize } from '@image-api/shared/api/size';

/** Round down to a multiple of SIZE_MULTIPLE within [MIN_IMAGE_SIDE, MAX_IMAGE_SIDE]. */
function fitSide(value: number): number {
  const rounded = Math.floor(value / SIZE_MULTIPLE) * SIZE_MULTIPLE;
  return Math.min(MAX_IMAGE_SIDE, Math.max(MIN_IMAGE_SIDE, rounded));
}

/**
 * The output size used when an edit/variation/img2img request gives none: the source image's size,
 * scaled down (aspect ratio kept) when width × height exceeds the model's `maxPixels`, then each side
 * rounded DOWN to a multiple of 8 (latents are 8× smaller) and kept within 64..4096. Never scaled up.
 * Example: 1000×700 with max 512² → scale √(262144/700000) = 0.612 → 612×428 → 608×424.
 */
export function sizeFromSourceImage(width: number, height: number, maxPixels: number): ImageSize {
  let w = width;
  let h = height;
  if (w * h > maxPixels) {
    const scale = Math.sqrt(maxPixels / (w * h));
    w *= scale;
    h *= scale;
  }
  const size = { width: fitSide(w), height: fitSide(h) };
  // The 64-pixel floor can push an extreme aspect ratio back over the budget: shave the longer side.
  while (size.width * size.height > maxPixels && Math.max(size.width, size.height) > MIN_IMAGE_SIDE) {
    if (size.width >= size.height) size.width -= SIZE_MULTIPLE;
    else size.height -= SIZE_MULTIPLE;
  }
  return size;
}
