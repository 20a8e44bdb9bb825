/**
 * A general PNG encoder for tests (PNG specification, ISO/IEC 15948): colour types 0/2/3/4/6, bit
 * depths 1–16, PLTE/tRNS, every row filter (chosen per row) and Adam7 interlacing, so the edge's
 * streamed mask reader is exercised on every layout it must accept. Samples are given per pixel at the
 * image's bit depth.
 */

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** One PNG chunk: length, type, data, CRC-32 over type + data. */
export function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** zlib (RFC 1950) stream of `bytes`. */
export async function deflate(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export const PNG_SIGNATURE = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** IHDR bytes. */
export function ihdr(width: number, height: number, bitDepth: number, colorType: number, interlace = 0): Uint8Array {
  const data = new Uint8Array(13);
  const view = new DataView(data.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  data.set([bitDepth, colorType, 0, 0, interlace], 8);
  return pngChunk('IHDR', data);
}

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/** What to encode. `pixel(x, y)` returns the samples of one pixel (channels of the colour type). */
export interface PngSpec {
  width: number;
  height: number;
  colorType: 0 | 2 | 3 | 4 | 6;
  bitDepth: 1 | 2 | 4 | 8 | 16;
  pixel: (x: number, y: number) => number[];
  /** PLTE entries as [r, g, b] (colour type 3). */
  palette?: Array<[number, number, number]>;
  /** tRNS body: alpha per palette entry (type 3), or the transparent grey / [r, g, b] key (types 0/2). */
  transparency?: number[];
  interlace?: boolean;
  /** Row filter for row y of a pass (default: cycles 0..4 so every filter is used). */
  filter?: (y: number) => number;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

function packRow(spec: PngSpec, xs: number[], y: number): Uint8Array {
  const channels = CHANNELS[spec.colorType];
  const bits = channels * spec.bitDepth;
  const row = new Uint8Array(Math.ceil((xs.length * bits) / 8));
  let bit = 0;
  for (const x of xs) {
    const samples = spec.pixel(x, y);
    if (samples.length !== channels) throw new Error(`pixel(${x},${y}) gave ${samples.length} samples, expected ${channels}`);
    for (const sample of samples) {
      if (spec.bitDepth === 16) {
        row[bit / 8] = sample >> 8;
        row[bit / 8 + 1] = sample & 0xff;
      } else if (spec.bitDepth === 8) {
        row[bit / 8] = sample;
      } else {
        row[Math.floor(bit / 8)] |= sample << (8 - spec.bitDepth - (bit % 8));
      }
      bit += spec.bitDepth;
    }
  }
  return row;
}

function filterRow(type: number, row: Uint8Array, prev: Uint8Array, bpp: number): Uint8Array {
  const out = new Uint8Array(row.length + 1);
  out[0] = type;
  for (let i = 0; i < row.length; i++) {
    const a = i >= bpp ? row[i - bpp] : 0;
    const b = prev[i];
    const c = i >= bpp ? prev[i - bpp] : 0;
    const predictor = type === 0 ? 0 : type === 1 ? a : type === 2 ? b : type === 3 ? Math.floor((a + b) / 2) : paeth(a, b, c);
    out[i + 1] = (row[i] - predictor) & 0xff;
  }
  return out;
}

const ADAM7: Array<[number, number, number, number]> = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
];

/** Encode `spec` as a PNG file. */
export async function encodePng(spec: PngSpec): Promise<Uint8Array> {
  const channels = CHANNELS[spec.colorType];
  const bpp = Math.max(1, (channels * spec.bitDepth) / 8);
  const filter = spec.filter ?? ((y: number) => y % 5);
  const passes = spec.interlace ? ADAM7 : [[0, 0, 1, 1] as [number, number, number, number]];
  const raw: Uint8Array[] = [];
  for (const [x0, y0, dx, dy] of passes) {
    const xs: number[] = [];
    for (let x = x0; x < spec.width; x += dx) xs.push(x);
    if (xs.length === 0) continue;
    let prev = new Uint8Array(Math.ceil((xs.length * channels * spec.bitDepth) / 8));
    let rowIndex = 0;
    for (let y = y0; y < spec.height; y += dy) {
      const row = packRow(spec, xs, y);
      raw.push(filterRow(filter(rowIndex++), row, prev, bpp));
      prev = row as Uint8Array<ArrayBuffer>;
    }
  }
  const chunks = [PNG_SIGNATURE, ihdr(spec.width, spec.height, spec.bitDepth, spec.colorType, spec.interlace ? 1 : 0)];
  if (spec.palette) chunks.push(pngChunk('PLTE', new Uint8Array(spec.palette.flat())));
  if (spec.transparency) {
    if (spec.colorType === 3) chunks.push(pngChunk('tRNS', new Uint8Array(spec.transparency)));
    else {
      const data = new Uint8Array(spec.transparency.length * 2);
      const view = new DataView(data.buffer);
      spec.transparency.forEach((v, i) => view.setUint16(2 * i, v));
      chunks.push(pngChunk('tRNS', data));
    }
  }
  chunks.push(pngChunk('IDAT', await deflate(concat(raw))), pngChunk('IEND', new Uint8Array()));
  return concat(chunks);
}

/** RGBA 8-bit PNG: opaque except where `transparent(x, y)`. A mask in OpenAI's convention. */
export function alphaMaskPng(width: number, height: number, transparent: (x: number, y: number) => boolean): Promise<Uint8Array> {
  return encodePng({ width, height, colorType: 6, bitDepth: 8, pixel: (x, y) => [0, 0, 0, transparent(x, y) ? 0 : 255] });
}

/** Greyscale 8-bit PNG: white where `white(x, y)`, else black. A mask in the white = repaint convention. */
export function whiteMaskPng(width: number, height: number, white: (x: number, y: number) => boolean): Promise<Uint8Array> {
  return encodePng({ width, height, colorType: 0, bitDepth: 8, pixel: (x, y) => [white(x, y) ? 255 : 0] });
}

/**
 * A PNG that is only a signature and an IHDR declaring width × height (no pixel data): what a
 * decompression bomb looks like to a header check.
 */
export function pngHeaderOnly(width: number, height: number): Uint8Array {
  return concat([PNG_SIGNATURE, ihdr(width, height, 8, 2), pngChunk('IEND', new Uint8Array())]);
}

/** The segments of {@link jpegHeader} (each with its marker), so tests can splice more in. */
export function jpegSegments(width: number, height: number): { soi: number[]; app0: number[]; sof: number[]; scan: number[]; eoi: number[] } {
  return {
    soi: [0xff, 0xd8],
    app0: [0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00],
    sof: [0xff, 0xc0, 0x00, 0x11, 0x08, height >> 8, height & 0xff, width >> 8, width & 0xff, 0x03, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1],
    // SOS for the 3 components, then a few bytes of "entropy-coded data" (a stuffed 0xFF and a restart marker included).
    scan: [0xff, 0xda, 0x00, 0x0c, 0x03, 1, 0x00, 2, 0x11, 3, 0x11, 0x00, 0x3f, 0x00, 0x12, 0xff, 0x00, 0x34, 0xff, 0xd0, 0x56],
    eoi: [0xff, 0xd9],
  };
}

/**
 * A minimal baseline JPEG: SOI, APP0 (JFIF), SOF0 declaring width × height (3 components), a scan, EOI.
 * Structurally whole (header and container checks pass); its scan data is not a decodable image.
 */
export function jpegHeader(width: number, height: number): Uint8Array {
  const s = jpegSegments(width, height);
  return new Uint8Array([...s.soi, ...s.app0, ...s.sof, ...s.scan, ...s.eoi]);
}

/** A minimal extended WebP (RIFF/WEBP/VP8X) declaring width × height. */
export function webpHeader(width: number, height: number): Uint8Array {
  const out = new Uint8Array(30);
  const text = (at: number, s: string) => [...s].forEach((ch, i) => (out[at + i] = ch.charCodeAt(0)));
  const view = new DataView(out.buffer);
  text(0, 'RIFF');
  view.setUint32(4, 22, true);
  text(8, 'WEBP');
  text(12, 'VP8X');
  view.setUint32(16, 10, true);
  out[20] = 0; // flags
  const w = width - 1;
  const h = height - 1;
  out.set([w & 0xff, (w >> 8) & 0xff, (w >> 16) & 0xff], 24);
  out.set([h & 0xff, (h >> 8) & 0xff, (h >> 16) & 0xff], 27);
  return out;
}
