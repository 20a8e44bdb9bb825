/**
 * Limits on what a client may send as an image input (issue 6 part 8). One place so the routes, the
 * URL fetcher and the docs agree.
 */

/** Largest request body the image routes read, in bytes (20 MiB). Larger bodies are refused with 413. */
export const MAX_BODY_BYTES = 20 * 1024 * 1024;

/** Largest image fetched from an `image_url`, in bytes (20 MiB, like an upload). */
export const MAX_IMAGE_URL_BYTES = 20 * 1024 * 1024;

/**
 * Largest side of an input image, in pixels, read from the file header before anything decodes it
 * (decompression bombs: a 100 KB PNG can declare 50 000 × 50 000 pixels).
 */
export const MAX_INPUT_SIDE = 4096;

/** Largest width × height of an input image (4096², the GPU service's own decode limit). */
export const MAX_INPUT_PIXELS = 4096 * 4096;

/** Time allowed to fetch an `image_url`, redirects included, in milliseconds. */
export const IMAGE_URL_TIMEOUT_MS = 10_000;

/** Redirects followed when fetching an `image_url` (each target is checked again). */
export const MAX_IMAGE_URL_REDIRECTS = 3;
