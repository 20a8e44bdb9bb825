import type { ImagesResponse, Quality } from '@image-api/shared/api/openai-images';
import type { GenerationParams } from '@image-api/shared/generation-job';
import { invalidParameter, unsupportedParameter } from '../lib/api-error';

/** The OpenAI fields that every image route of that style checks the same way. */
export interface OpenAiOutputOptions {
  background?: 'transparent' | 'opaque' | 'auto';
  output_format: 'png' | 'jpeg' | 'webp';
  output_compression?: number;
}

/**
 * Refuse what this deployment cannot do instead of ignoring it (README, "Accepted fields"):
 * - `background: "transparent"` needs a matting model, which is not served yet;
 * - `output_compression` with png: PNG is lossless, the field only sets JPEG/WebP encoder quality.
 * @throws ApiError 400 `unsupported_parameter` naming background; 400 `invalid_parameter` naming output_compression.
 */
export function checkOpenAiOutputOptions(request: OpenAiOutputOptions): void {
  if (request.background === 'transparent') {
    throw unsupportedParameter(
      'background',
      'background "transparent" needs a matting model, which this deployment does not serve yet; use "opaque" or "auto" (an RGB image).',
    );
  }
  if (request.output_compression !== undefined && request.output_format === 'png') {
    throw invalidParameter('output_compression', 'output_compression sets the JPEG/WebP encoder quality; PNG is lossless. Leave it out, or ask for output_format jpeg or webp.');
  }
}

/** OpenAI's response quality (low | medium | high) for a request's `quality`; undefined when it was not given. */
export function responseQuality(quality: Quality | undefined): ImagesResponse['quality'] {
  if (quality === undefined) return undefined;
  if (quality === 'low') return 'low';
  return quality === 'high' || quality === 'hd' ? 'high' : 'medium';
}

/** The top-level fields of OpenAI's ImagesResponse for a finished job (SDK types: background, output_format, quality, size). */
export function openAiResponseFields(
  request: { output_format: 'png' | 'jpeg' | 'webp'; quality?: Quality },
  receipt: GenerationParams,
): Pick<ImagesResponse, 'background' | 'output_format' | 'quality' | 'size'> {
  return {
    background: 'opaque',
    output_format: request.output_format,
    ...(request.quality !== undefined ? { quality: responseQuality(request.quality) } : {}),
    size: `${receipt.width}x${receipt.height}`,
  };
}

/**
 * The JPEG/WebP encoder quality (1..100, the GenerationJob's output.quality) for OpenAI's output_compression
 * (0..100): the same number, 0 taken as 1 (the lowest quality the encoders have); 90 when not given.
 */
export function encoderQuality(outputCompression: number | undefined): number {
  return outputCompression === undefined ? 90 : Math.max(1, outputCompression);
}
