import { ApiError } from '../lib/api-error';

/**
 * The errors the image-input checks raise, each naming the offending field in `param`
 * (shared error body, README "Public API").
 */

/** 413 `payload_too_large`: the request body (or a fetched image) is over its byte limit. */
export function payloadTooLarge(message: string, param: string | null = null): ApiError {
  return new ApiError(413, 'invalid_request_error', 'payload_too_large', message, param);
}

/** 415 `unsupported_media_type`: not a PNG, JPEG or WebP file by its magic bytes, or a body that is not multipart/JSON. */
export function unsupportedMediaType(message: string, param: string | null = null): ApiError {
  return new ApiError(415, 'invalid_request_error', 'unsupported_media_type', message, param);
}

/** 400 `image_too_large`: the header declares more pixels than MAX_INPUT_PIXELS / MAX_INPUT_SIDE allow. */
export function imageTooLarge(message: string, param: string): ApiError {
  return new ApiError(400, 'invalid_request_error', 'image_too_large', message, param);
}

/** 400 `invalid_image`: a PNG/JPEG/WebP signature whose header cannot be read, or bad base64. */
export function invalidImage(message: string, param: string): ApiError {
  return new ApiError(400, 'invalid_request_error', 'invalid_image', message, param);
}

/** 400 `invalid_image_url`: a URL the SSRF policy refuses (scheme, private address, local name, credentials). */
export function invalidImageUrl(message: string, param: string): ApiError {
  return new ApiError(400, 'invalid_request_error', 'invalid_image_url', message, param);
}

/** 400 `image_url_fetch_failed`: the URL was allowed but fetching it failed (network, timeout, status, redirects). */
export function imageUrlFetchFailed(message: string, param: string): ApiError {
  return new ApiError(400, 'invalid_request_error', 'image_url_fetch_failed', message, param);
}

/** 400 `invalid_mask`: a mask of the wrong size, without alpha in alpha mode, or that covers nothing. */
export function invalidMask(message: string): ApiError {
  return new ApiError(400, 'invalid_request_error', 'invalid_mask', message, 'mask');
}

/**
 * The request fields a job's images came from, per route: GenerationJob's `init_image` and `mask` are not
 * request fields anywhere (`image`, `images[0].image_url`, `image_url`, `request.image_base64`, …).
 */
export type PublicImageParams = Partial<Record<'init_image' | 'mask', string>>;

/**
 * The request field behind a GPU service error's `param` when it names the job's `init_image` or `mask`
 * (issue 10 item 6: errors name the public field); any other param unchanged. Compose it with the
 * add-on renaming in a run's `publicParam`.
 */
export function publicImageParam(param: string | null, params: PublicImageParams): string | null {
  if (param === 'init_image' || param === 'mask') return params[param] ?? param;
  return param;
}
