/** The output formats the public API can encode (`output_format`, README "Public API"). */
export const IMAGE_FORMATS = ['png', 'jpeg', 'webp'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

/** The file extension the CLI gives each format (`.jpg`, the common spelling, for jpeg). */
export const FORMAT_EXTENSIONS: Readonly<Record<ImageFormat, string>> = { png: '.png', jpeg: '.jpg', webp: '.webp' };

/** Lower-case file extensions the CLI recognises, and the format each one means. */
const EXTENSION_FORMATS: Readonly<Record<string, ImageFormat>> = {
  '.png': 'png',
  '.jpg': 'jpeg',
  '.jpeg': 'jpeg',
  '.webp': 'webp',
};

/** True when `value` is one of IMAGE_FORMATS. */
export function isImageFormat(value: string): value is ImageFormat {
  return (IMAGE_FORMATS as readonly string[]).includes(value);
}

/**
 * The format a file extension stands for (`.JPG` → `jpeg`), or null for an unknown extension.
 * `extension` includes the dot, as `path.extname` returns it.
 */
export function formatOfExtension(extension: string): ImageFormat | null {
  return EXTENSION_FORMATS[extension.toLowerCase()] ?? null;
}

/**
 * Recognise an encoded image by its magic bytes: PNG signature (8 bytes), JPEG SOI marker
 * (FF D8 FF), WebP RIFF....WEBP container. Returns null for anything else.
 */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | null {
  const startsWith = (prefix: number[], offset = 0): boolean =>
    bytes.length >= offset + prefix.length && prefix.every((byte, i) => bytes[offset + i] === byte);
  if (startsWith([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (startsWith([0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith([0x52, 0x49, 0x46, 0x46]) && startsWith([0x57, 0x45, 0x42, 0x50], 8)) return 'webp';
  return null;
}
