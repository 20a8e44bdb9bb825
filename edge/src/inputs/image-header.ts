import { imageSize } from 'image-size';
import { MAX_INPUT_PIXELS, MAX_INPUT_SIDE } from './input-limits';
import { imageTooLarge, invalidImage, unsupportedMediaType } from './input-errors';

/** The image types the API accepts as inputs. */
export type InputImageType = 'png' | 'jpeg' | 'webp';

/** MIME type and file extension per accepted type. */
export const INPUT_IMAGE_FORMATS: Readonly<Record<InputImageType, { mimeType: string; extension: string }>> = {
  png: { mimeType: 'image/png', extension: 'png' },
  jpeg: { mimeType: 'image/jpeg', extension: 'jpg' },
  webp: { mimeType: 'image/webp', extension: 'webp' },
};

/** What the header of an accepted input image says; nothing has been decoded. */
export interface ImageHeader {
  type: InputImageType;
  mimeType: string;
  extension: string;
  /** Pixels, as the header declares them. */
  width: number;
  height: number;
}

/** Limits of {@link inspectImageHeader}. */
export interface ImageHeaderLimits {
  maxSide: number;
  maxPixels: number;
}

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const JPEG_MAGIC = [0xff, 0xd8, 0xff];

function startsWith(bytes: Uint8Array, magic: readonly number[], offset = 0): boolean {
  if (bytes.length < offset + magic.length) return false;
  return magic.every((byte, i) => bytes[offset + i] === byte);
}

function ascii(text: string): number[] {
  return Array.from(text, (ch) => ch.charCodeAt(0));
}

/**
 * The type of an image by its magic bytes (never by a declared Content-Type or file name):
 * PNG `89 50 4E 47 0D 0A 1A 0A`, JPEG `FF D8 FF`, WebP `RIFF????WEBP` (RIFF container, WebP spec).
 * @returns the type, or null for anything else.
 */
export function sniffImageType(bytes: Uint8Array): InputImageType | null {
  if (startsWith(bytes, PNG_MAGIC)) return 'png';
  if (startsWith(bytes, JPEG_MAGIC)) return 'jpeg';
  if (startsWith(bytes, ascii('RIFF')) && startsWith(bytes, ascii('WEBP'), 8)) return 'webp';
  return null;
}

/** A name for common formats we refuse, so the 415 says what was sent. */
function describeOther(bytes: Uint8Array): string {
  if (bytes.length === 0) return 'an empty file';
  if (startsWith(bytes, ascii('GIF8'))) return 'a GIF';
  if (startsWith(bytes, ascii('BM'))) return 'a BMP';
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) return 'a TIFF';
  if (startsWith(bytes, ascii('ftyp'), 4)) return 'an AVIF/HEIF';
  const head = new TextDecoder().decode(bytes.subarray(0, 256)).trimStart().toLowerCase();
  if (head.startsWith('<svg') || head.startsWith('<?xml')) return 'an SVG/XML document';
  return 'not an image we recognise';
}

/**
 * Check an input image from its first bytes only: the type by magic bytes, then the pixel
 * dimensions from the header (image-size reads them without decoding pixel data), refused when a
 * side exceeds `limits.maxSide` or width × height exceeds `limits.maxPixels`. Run this BEFORE
 * anything decodes the image.
 * @param param the request field the image came from, named in every error.
 * @throws ApiError 415 `unsupported_media_type` (not PNG/JPEG/WebP), 400 `invalid_image` (header
 *   unreadable or zero-sized), 400 `image_too_large` (over the limits).
 */
export function inspectImageHeader(
  bytes: Uint8Array,
  param: string,
  limits: ImageHeaderLimits = { maxSide: MAX_INPUT_SIDE, maxPixels: MAX_INPUT_PIXELS },
): ImageHeader {
  const type = sniffImageType(bytes);
  if (!type) {
    throw unsupportedMediaType(`${param} must be a PNG, JPEG or WebP image; the file is ${describeOther(bytes)}.`, param);
  }
  let width: number | undefined;
  let height: number | undefined;
  try {
    const size = imageSize(bytes);
    // Same container as the magic bytes said (image-size detects by its own rules).
    if (size.type === (type === 'jpeg' ? 'jpg' : type)) {
      width = size.width;
      height = size.height;
    }
  } catch {
    // Falls through to invalid_image.
  }
  if (!width || !height || !Number.isInteger(width) || !Number.isInteger(height)) {
    throw invalidImage(`${param} looks like a ${type.toUpperCase()} file but its header is damaged or truncated.`, param);
  }
  if (width > limits.maxSide || height > limits.maxSide || width * height > limits.maxPixels) {
    throw imageTooLarge(
      `${param} is ${width}x${height} pixels; inputs may have at most ${limits.maxSide} pixels per side and ${limits.maxPixels} pixels in all.`,
      param,
    );
  }
  return { type, ...INPUT_IMAGE_FORMATS[type], width, height };
}
