/**
 * Images an attacker sends: a decompression bomb (a small PNG whose header claims 50,000 × 50,000
 * pixels), a truncated PNG, and files of foreign formats under image names. Built here from bytes,
 * byte-exact per the PNG specification (chunks: length, type, data, CRC-32 of type + data).
 */
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A PNG whose IHDR says `side` × `side` RGB, with one IDAT of the first rows' zeros (a few hundred bytes in all). */
export function pngBomb(side = 50_000): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(side, 0);
  ihdr.writeUInt32BE(side, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type RGB
  const rows = Buffer.alloc((side * 3 + 1) * 4); // four filter-0 rows of black
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(rows, { level: 9 })), chunk('IEND', Buffer.alloc(0))]);
}

/** A valid `side`² PNG of noise (so it does not compress to nothing). */
export async function validPng(side = 64): Promise<Buffer> {
  const pixels = Buffer.alloc(side * side * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 2654435761) >>> 24;
  return sharp(pixels, { raw: { width: side, height: side, channels: 3 } }).png().toBuffer();
}

/** Hostile images by name: each must be refused with a 4xx. */
export async function hostileImages(): Promise<Record<string, Buffer>> {
  const png = await validPng(64);
  return {
    'a PNG bomb (50000² claimed)': pngBomb(),
    'a PNG cut after 60% of its bytes': png.subarray(0, Math.floor(png.length * 0.6)),
    'a PNG cut inside its header': png.subarray(0, 20),
    'a GIF': Buffer.from('R0lGODlhAQABAIAAAP///wAAACwAAAAAAQABAAACAkQBADs=', 'base64'),
    'a BMP': Buffer.concat([Buffer.from('BM'), Buffer.alloc(60)]),
    'a TIFF': Buffer.concat([Buffer.from([0x49, 0x49, 0x2a, 0x00]), Buffer.alloc(60)]),
    'a PDF': Buffer.from('%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n'),
    'an SVG': Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64"/></svg>'),
    'random bytes': Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 7919) % 251)),
  };
}
