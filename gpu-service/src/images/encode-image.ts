/**
 * RGB pixels → PNG / JPEG / WebP bytes (sharp), with the reproducibility receipt embedded as a PNG
 * `tEXt` chunk named "parameters" (the key AUTOMATIC1111 and most viewers read).
 */
import sharp from 'sharp';
import { crc32 } from 'node:zlib';

export type ImageFormat = 'png' | 'jpeg' | 'webp';

/** MIME type for an output format. */
export function mimeTypeOf(format: ImageFormat): string {
  return format === 'jpeg' ? 'image/jpeg' : format === 'webp' ? 'image/webp' : 'image/png';
}

/**
 * Encode an RGB image, or RGBA when `alpha` is given (straight alpha; PNG colour type 6, WebP with an alpha plane
 * stored losslessly: sharp's alphaQuality 100).
 * @param rgb interleaved RGB, width × height pixels.
 * @param quality 1..100 for jpeg/webp (ignored for png).
 * @param receipt text stored in the PNG's "parameters" tEXt chunk (png only; Latin-1 safe JSON).
 * @param alpha width × height alpha bytes (255 = opaque).
 * @throws Error for jpeg with alpha (JPEG has no alpha channel; jobs asking for it are refused at admission).
 */
export async function encodeImage(
  rgb: Uint8Array,
  width: number,
  height: number,
  format: ImageFormat,
  quality = 90,
  receipt?: string,
  alpha?: Uint8Array,
): Promise<Buffer> {
  let img;
  if (alpha) {
    if (format === 'jpeg') throw new Error('JPEG has no alpha channel');
    const rgba = Buffer.alloc(width * height * 4);
    for (let p = 0; p < width * height; p++) {
      rgba[p * 4] = rgb[p * 3];
      rgba[p * 4 + 1] = rgb[p * 3 + 1];
      rgba[p * 4 + 2] = rgb[p * 3 + 2];
      rgba[p * 4 + 3] = alpha[p];
    }
    img = sharp(rgba, { raw: { width, height, channels: 4 } });
  } else {
    img = sharp(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), { raw: { width, height, channels: 3 } });
  }
  if (format === 'jpeg') return img.jpeg({ quality }).toBuffer();
  if (format === 'webp') return img.webp({ quality, ...(alpha ? { alphaQuality: 100 } : {}) }).toBuffer();
  const png = await img.png().toBuffer();
  return receipt ? insertPngText(png, 'parameters', receipt) : png;
}

/**
 * Insert a tEXt chunk right after IHDR (PNG spec §11.3.4.3). Non-Latin-1 characters are escaped as \uXXXX
 * so the chunk stays valid.
 */
export function insertPngText(png: Buffer, keyword: string, text: string): Buffer {
  const safe = text.replace(/[^\x20-\x7e\n]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const data = Buffer.concat([Buffer.from(keyword, 'latin1'), Buffer.from([0]), Buffer.from(safe, 'latin1')]);
  const type = Buffer.from('tEXt', 'latin1');
  const chunk = Buffer.alloc(12 + data.length);
  chunk.writeUInt32BE(data.length, 0);
  type.copy(chunk, 4);
  data.copy(chunk, 8);
  chunk.writeUInt32BE(crc32(Buffer.concat([type, data])) >>> 0, 8 + data.length);
  const ihdrEnd = 8 + 8 + png.readUInt32BE(8) + 4; // signature + IHDR length/type + data + crc
  return Buffer.concat([png.subarray(0, ihdrEnd), chunk, png.subarray(ihdrEnd)]);
}

/** Read every tEXt chunk of a PNG (keyword → text). */
export function readPngText(png: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let off = 8;
  while (off + 8 <= png.length) {
    const len = png.readUInt32BE(off);
    const type = png.toString('latin1', off + 4, off + 8);
    if (type === 'tEXt') {
      const body = png.subarray(off + 8, off + 8 + len);
      const zero = body.indexOf(0);
      out[body.toString('latin1', 0, zero)] = body.toString('latin1', zero + 1);
    }
    if (type === 'IEND') break;
    off += 12 + len;
  }
  return out;
}
