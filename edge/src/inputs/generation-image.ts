import type { BackendModel } from '@image-api/shared/api/models';
import type { ImageSize } from '@image-api/shared/api/size';
import type { GenerationJobInput } from '@image-api/shared/generation-job';
import { unsupportedParameter } from '../lib/api-error';
import { encodeBase64 } from '../lib/base64';
import { requireCapability, resolveOutputSize } from './image-job';
import { resolveImageInput, type InputImage } from './resolve-image-input';
import { allowHttpImageUrls } from './url-guard';

/**
 * The `image` field of POST /v1/images/generations (README "Public API": "source image as URL or
 * base64 → turns the request into img2img"): an https URL (http only with ALLOW_HTTP_IMAGE_URLS),
 * a data: URL or bare base64; an array of one. Checked like every input (magic bytes, header pixel
 * limits, SSRF rules). A Stable Diffusion pipeline starts from one image, so a second entry is refused
 * (as /v1/images/edits refuses `image[1]`), never dropped.
 * @param env the Worker env (reads ALLOW_HTTP_IMAGE_URLS).
 * @returns the checked image, or null when `image` is absent.
 * @throws ApiError 400/413/415 naming `image`; 400 naming `image[1]` for a second image.
 */
export async function resolveGenerationImage(env: object, image: string | string[] | undefined): Promise<InputImage | null> {
  if (image === undefined) return null;
  if (Array.isArray(image) && image.length > 1) {
    throw unsupportedParameter('image[1]', 'img2img starts from one image: send image as a single URL or base64 string (image[1] and later cannot be used).');
  }
  const first = Array.isArray(image) ? image[0] : image;
  if (first === undefined) return null;
  return resolveImageInput(first, { param: 'image', allowHttp: allowHttpImageUrls(env) });
}

/**
 * Turn a txt2img job built from a generations request into img2img of `source` (in place):
 * mode img2img, init_image, `strength` (GPUStack's field, default 0.75) with stable-diffusion.cpp
 * step semantics ('scaled'), and — when the request gave no `size` — the source image's size fitted
 * to the model (source-size.ts) instead of the model's native size.
 * @throws ApiError 400 `model` when the model cannot do img2img, `size` when over max_pixels.
 */
export function applyGenerationImage(
  job: GenerationJobInput,
  source: InputImage,
  options: { model: BackendModel; size: ImageSize | null | undefined; strength: number },
): GenerationJobInput {
  requireCapability(options.model, 'img2img');
  const size = resolveOutputSize(options.model, options.size, source);
  job.mode = 'img2img';
  job.width = size.width;
  job.height = size.height;
  job.init_image = encodeBase64(source.bytes);
  job.strength = options.strength;
  job.strength_schedule = 'scaled';
  return job;
}
