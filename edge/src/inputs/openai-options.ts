import type { ImagesResponse, Quality } from '@image-api/shared/api/openai-images';
import type { GenerationJobInput, GenerationParams } from '@image-api/shared/generation-job';
import type { GpuClient } from '../gpu/backend-client';
import type { ModelCatalog } from '../gpu/model-catalog';
import { invalidParameter } from '../lib/api-error';
import { listingWith, transparentBackgroundFields } from '../postprocess/postprocess-options';

/** The OpenAI fields that every image route of that style checks the same way. */
export interface OpenAiOutputOptions {
  background?: 'transparent' | 'opaque' | 'auto';
  output_format: 'png' | 'jpeg' | 'webp';
  output_compression?: number;
}

/**
 * Refuse what this deployment cannot do instead of ignoring it (README, "Accepted fields"):
 * - `background: "transparent"` with output_format jpeg: JPEG has no alpha channel (whether the deployment has a
 *   matting model is checked against its listing by {@link openAiBackgroundJobFields});
 * - `output_compression` with png: PNG is lossless, the field only sets JPEG/WebP encoder quality.
 * @throws ApiError 400 `invalid_parameter` naming background or output_compression.
 */
export function checkOpenAiOutputOptions(request: OpenAiOutputOptions): void {
  if (request.background === 'transparent' && request.output_format === 'jpeg') {
    throw invalidParameter('background', 'A transparent background needs an output format with alpha: output_format "png" or "webp" (JPEG has none).');
  }
  if (request.output_compression !== undefined && request.output_format === 'png') {
    throw invalidParameter('output_compression', 'output_compression sets the JPEG/WebP encoder quality; PNG is lossless. Leave it out, or ask for output_format jpeg or webp.');
  }
}

/**
 * The job fields of OpenAI's `background`: `transparent` runs the deployment's matting model (any checkpoint), which
 * must be listed; `opaque` and `auto` give RGB images (nothing to add).
 * @throws ApiError 400 naming background when the deployment lists no usable matting model, or for jpeg output.
 */
export async function openAiBackgroundJobFields(
  request: OpenAiOutputOptions,
  catalog: Pick<ModelCatalog, 'listHaving'>,
  pool: Pick<GpuClient, 'listModels'> & { key: string },
): Promise<Pick<GenerationJobInput, 'background'>> {
  if (request.background !== 'transparent') return {};
  return transparentBackgroundFields(await listingWith(catalog, pool, 'matting'), request.output_format, 'background', 'output_format');
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
    background: receipt.background === 'transparent' ? 'transparent' : 'opaque',
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
