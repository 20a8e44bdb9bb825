import { fetchImageUrl } from './fetch-image-url';
import { inspectImageHeader, type ImageHeader } from './image-header';
import { sanitizeImageContainer } from './image-container';
import { decodeDataUrl, decodeImageBase64, imageStringKind } from './image-string';

/** Where an input image came from. */
export type ImageInputSource = 'upload' | 'url' | 'data_url' | 'base64';

/** An input image whose type and header dimensions have been checked (pixels not decoded). */
export interface InputImage extends ImageHeader {
  /** The file as sent (PNG, JPEG or WebP) without its metadata (image-container.ts): what is stored and sent on. */
  bytes: Uint8Array;
  source: ImageInputSource;
  /** The fetched URL, for source 'url'. */
  url?: string;
  /** The uploaded file's name, for source 'upload'. */
  filename?: string;
}

/** Options of {@link resolveImageInput}. */
export interface ResolveImageInputOptions {
  /** The request field ("image", "mask", "image_url"), named in every error. */
  param: string;
  /** Accept http:// image URLs (ALLOW_HTTP_IMAGE_URLS="true"). Default false. */
  allowHttp?: boolean;
  /** fetch for image URLs (default: global fetch at call time). */
  fetch?: typeof fetch;
}

/**
 * Turn one image field into checked bytes: an uploaded file (Blob/File from multipart), a `data:`
 * URL, bare base64, or an http(s) URL fetched under the SSRF policy (fetch-image-url.ts). Every
 * result passes inspectImageHeader (PNG/JPEG/WebP by magic bytes and within the pixel limits), then
 * sanitizeImageContainer (structurally whole, so a truncated file is refused here rather than failing a
 * task later; EXIF/XMP/text metadata removed before anything stores or forwards the bytes).
 * The request body cap (body-size-limit.ts) bounds uploads and inline base64; fetched URLs have
 * their own cap.
 * @throws ApiError 400/413/415 naming `options.param` (see the modules above).
 */
export async function resolveImageInput(value: string | Blob, options: ResolveImageInputOptions): Promise<InputImage> {
  const { param } = options;
  if (typeof value !== 'string') {
    const filename = 'name' in value && typeof value.name === 'string' ? value.name : undefined;
    return { ...checked(new Uint8Array(await value.arrayBuffer()), param), source: 'upload', filename };
  }
  const kind = imageStringKind(value);
  if (kind === 'url') {
    const url = value.trim();
    const bytes = await fetchImageUrl(url, { param, allowHttp: options.allowHttp, fetch: options.fetch });
    return { ...checked(bytes, param), source: 'url', url };
  }
  return { ...checked(kind === 'data_url' ? decodeDataUrl(value, param) : decodeImageBase64(value, param), param), source: kind };
}

/**
 * The header checks, then the container check and metadata removal; `bytes` of the result is the cleaned file.
 * `bytes` is this module's own (a fresh upload buffer, decoded base64 or a fetched body), so it is cleaned in
 * place (no second 20 MB buffer).
 */
function checked(bytes: Uint8Array, param: string): ImageHeader & { bytes: Uint8Array } {
  const header = inspectImageHeader(bytes, param);
  return { ...header, bytes: sanitizeImageContainer(bytes, header.type, param, { inPlace: true }) };
}
