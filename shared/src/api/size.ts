import { z } from 'zod';

/** Smallest and largest edge length (pixels) any job may ask for (matches GenerationJobSchema). */
export const MIN_IMAGE_SIDE = 64;
export const MAX_IMAGE_SIDE = 4096;
/** Latent space is 8× smaller than pixel space, so both sides must be multiples of 8. */
export const SIZE_MULTIPLE = 8;

/** A parsed `WxH` size in pixels. */
export interface ImageSize {
  width: number;
  height: number;
}

const SIZE_PATTERN = /^(\d{1,5})x(\d{1,5})$/;

/**
 * The public `size` field: `"WxH"` (e.g. "512x512") with both sides multiples of 8 in 64..4096, or
 * `"auto"` (= the model's native size; gpt-image-1 accepts it). Parses to `{width, height}` or
 * `null` for auto. Model-specific limits (max_pixels) are checked later, against the model.
 */
export const SizeSchema = z
  .string()
  .transform((value, ctx): ImageSize | null => {
    if (value === 'auto') return null;
    const match = SIZE_PATTERN.exec(value);
    if (!match) {
      ctx.addIssue({ code: 'custom', message: `size must look like "512x512" (WxH in pixels), got "${value}"` });
      return z.NEVER;
    }
    const width = Number(match[1]);
    const height = Number(match[2]);
    for (const side of [width, height]) {
      if (side % SIZE_MULTIPLE !== 0 || side < MIN_IMAGE_SIDE || side > MAX_IMAGE_SIDE) {
        ctx.addIssue({
          code: 'custom',
          message: `size ${value}: width and height must be multiples of ${SIZE_MULTIPLE} between ${MIN_IMAGE_SIDE} and ${MAX_IMAGE_SIDE}`,
        });
        return z.NEVER;
      }
    }
    return { width, height };
  });

/** Format a size as the public `WxH` string. */
export function formatSize(size: ImageSize): string {
  return `${size.width}x${size.height}`;
}
