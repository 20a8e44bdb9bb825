import type { ImageUsage } from '@image-api/shared/api/openai-images';
import type { GenerationParams } from '@image-api/shared/generation-job';

/**
 * Compute units of a job: steps × megapixels × images (issue 6), rounded to 3 decimals.
 * A 1024² 50-step image costs 52.4; a 256² 4-step one 0.262.
 */
export function computeUnits(steps: number, width: number, height: number, images: number): number {
  return Math.round(steps * ((width * height) / 1_000_000) * images * 1000) / 1000;
}

/** The `usage` object of a finished job from its receipt and the number of images it returned. */
export function imageUsage(receipt: GenerationParams, images: number): ImageUsage {
  return {
    images,
    steps: receipt.steps,
    width: receipt.width,
    height: receipt.height,
    compute_units: computeUnits(receipt.steps, receipt.width, receipt.height, images),
  };
}
