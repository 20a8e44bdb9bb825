import type { ImageUsage } from '@image-api/shared/api/openai-images';
import type { GenerationParams } from '@image-api/shared/generation-job';

/**
 * Compute units of a job: steps × megapixels × images (issue 6), rounded to 3 decimals.
 * A 1024² 50-step image costs 52.4; a 256² 4-step one 0.262.
 */
export function computeUnits(steps: number, width: number, height: number, images: number): number {
  return Math.round(steps * ((width * height) / 1_000_000) * images * 1000) / 1000;
}

/** Latent positions of an image: (width/8)·(height/8), the unit of image tokens in `usage`. */
export function imageTokens(width: number, height: number): number {
  return Math.ceil(width / 8) * Math.ceil(height / 8);
}

/**
 * The `usage` object of a finished job from its receipt and the number of images it returned: OpenAI's
 * token fields (text tokens from the receipt's text_tokens; the source image, fitted to the output size,
 * for img2img/inpaint modes; every output image) and our diffusion cost.
 */
export function imageUsage(receipt: GenerationParams, images: number): ImageUsage {
  const textTokens = receipt.text_tokens ?? 0;
  const inputImageTokens = receipt.mode === 'txt2img' ? 0 : imageTokens(receipt.width, receipt.height);
  const outputTokens = imageTokens(receipt.width, receipt.height) * images;
  return {
    input_tokens: textTokens + inputImageTokens,
    input_tokens_details: { image_tokens: inputImageTokens, text_tokens: textTokens },
    output_tokens: outputTokens,
    output_tokens_details: { image_tokens: outputTokens },
    total_tokens: textTokens + inputImageTokens + outputTokens,
    images,
    steps: receipt.steps,
    width: receipt.width,
    height: receipt.height,
    compute_units: computeUnits(receipt.steps, receipt.width, receipt.height, images),
  };
}
