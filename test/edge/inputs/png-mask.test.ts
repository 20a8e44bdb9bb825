import { describe, expect, it } from 'vitest';
import { inspectPngMask, PngDecodeError } from '../../../edge/src/inputs/png-mask';
import { decodeBase64 } from '../../../edge/src/lib/base64';
import { concat, encodePng, ihdr, pngChunk, PNG_SIGNATURE, type PngSpec } from './helpers/png-encode';

/** 13×7 (not a multiple of 8) so partial bytes and short Adam7 passes occur; the marked pixel is late. */
const W = 13;
const H = 7;
const MARK = { x: 11, y: 6 };
const isMark = (x: number, y: number) => x === MARK.x && y === MARK.y;

describe('inspectPngMask on every PNG layout (our encoder, all filters, both interlace modes)', () => {
  const layouts: Array<{ name: string; spec: (marked: boolean) => Omit<PngSpec, 'interlace'>; alpha: boolean }> = [
    { name: 'RGBA 8-bit', alpha: true, spec: (m) => ({ width: W, height: H, colorType: 6, bitDepth: 8, pixel: (x, y) => (m && isMark(x, y) ? [255, 255, 255, 0] : [0, 0, 0, 255]) }) },
    { name: 'RGBA 16-bit', alpha: true, spec: (m) => ({ width: W, height: H, colorType: 6, bitDepth: 16, pixel: (x, y) => (m && isMark(x, y) ? [65535, 65535, 65535, 0x7fff] : [0, 0, 0, 0x8000]) }) },
    { name: 'grey+alpha 8-bit', alpha: true, spec: (m) => ({ width: W, height: H, colorType: 4, bitDepth: 8, pixel: (x, y) => (m && isMark(x, y) ? [200, 127] : [0, 128]) }) },
    { name: 'grey 1-bit with tRNS', alpha: true, spec: (m) => ({ width: W, height: H, colorType: 0, bitDepth: 1, transparency: [1], pixel: (x, y) => [m && isMark(x, y) ? 1 : 0] }) },
    { name: 'grey 4-bit with tRNS', alpha: true, spec: (m) => ({ width: W, height: H, colorType: 0, bitDepth: 4, transparency: [15], pixel: (x, y) => [m && isMark(x, y) ? 15 : 7] }) },
    { name: 'RGB 8-bit with tRNS key', alpha: true, spec: (m) => ({ width: W, height: H, colorType: 2, bitDepth: 8, transparency: [255, 255, 255], pixel: (x, y) => (m && isMark(x, y) ? [255, 255, 255] : [0, 0, 0]) }) },
    {
      name: 'palette 2-bit with tRNS',
      alpha: true,
      spec: (m) => ({ width: W, height: H, colorType: 3, bitDepth: 2, palette: [[0, 0, 0], [255, 255, 255]], transparency: [255, 0], pixel: (x, y) => [m && isMark(x, y) ? 1 : 0] }),
    },
    { name: 'grey 8-bit (no alpha)', alpha: false, spec: (m) => ({ width: W, height: H, colorType: 0, bitDepth: 8, pixel: (x, y) => [m && isMark(x, y) ? 255 : 0] }) },
    { name: 'grey 16-bit (no alpha)', alpha: false, spec: (m) => ({ width: W, height: H, colorType: 0, bitDepth: 16, pixel: (x, y) => [m && isMark(x, y) ? 65535 : 0] }) },
    { name: 'RGB 8-bit (no alpha)', alpha: false, spec: (m) => ({ width: W, height: H, colorType: 2, bitDepth: 8, pixel: (x, y) => (m && isMark(x, y) ? [255, 255, 255] : [10, 20, 30]) }) },
  ];

  for (const interlace of [false, true]) {
    for (const layout of layouts) {
      it(`${layout.name}${interlace ? ', Adam7' : ''}`, async () => {
        const marked = await encodePng({ ...layout.spec(true), interlace });
        const unmarked = await encodePng({ ...layout.spec(false), interlace });
        if (layout.alpha) {
          expect(await inspectPngMask(marked, 'alpha')).toBe('covers');
          expect(await inspectPngMask(unmarked, 'alpha')).toBe('empty');
        } else {
          expect(await inspectPngMask(marked, 'alpha')).toBe('no_alpha');
          // In white mode the marked pixel is white, everything else dark.
          expect(await inspectPngMask(marked, 'white')).toBe('covers');
          expect(await inspectPngMask(unmarked, 'white')).toBe('empty');
        }
      });
    }
  }

  it('white mode uses luma 0.299 R + 0.587 G + 0.114 B ≥ 128, as the GPU service does', async () => {
    const solid = (rgb: number[]) => encodePng({ width: 4, height: 4, colorType: 2, bitDepth: 8, pixel: () => rgb });
    expect(await inspectPngMask(await solid([0, 218, 0]), 'white')).toBe('empty'); // 127.97
    expect(await inspectPngMask(await solid([0, 219, 0]), 'white')).toBe('covers'); // 128.55
    expect(await inspectPngMask(await solid([0, 0, 255]), 'white')).toBe('empty'); // 29.07
    expect(await inspectPngMask(await solid([255, 255, 0]), 'white')).toBe('covers'); // 226.07
  });

  it('stops at the first marked pixel: a covered first row is answered even when the rest of the data is missing', async () => {
    const full = await encodePng({ width: 64, height: 64, colorType: 6, bitDepth: 8, filter: () => 0, pixel: (_x, y) => [0, 0, 0, y === 0 ? 0 : 255] });
    expect(await inspectPngMask(full, 'alpha')).toBe('covers');
  });
});

/**
 * Made by sharp/libvips (an independent encoder): 13×7, one pixel at (11, 6) transparent and near
 * white in the "marked" files. Expected verdicts computed by sharp's own decode with the GPU
 * service's rule (alpha < 128; luma ≥ 128; no_alpha when sharp reports no alpha).
 */
const SHARP_FIXTURES: Array<[string, string, string, string]> = [
  ['rgba_interlaced_marked', 'iVBORw0KGgoAAAANSUhEUgAAAA0AAAAHCAYAAAGkd/eMAAAACXBIWXMAAAPoAAAD6AG1e1JrAAAAKklEQVQYlWPgEpH7D8IMGAysArg5XPi0ES3JQB2JX79+MeB1AFmupqomAFoaca1BymnZAAAAAElFTkSuQmCC', 'covers', 'covers'],
  ['palette_marked', 'iVBORw0KGgoAAAANSUhEUgAAAA0AAAAHAgMAAACuHi+JAAAABlBMVEVMaXEKFB5Das79AAAAAXRSTlMAQObYZgAAAAlwSFlzAAAD6AAAA+gBtXtSawAAABJJREFUCJljCA0NdWDAQ4Q4AACZowi5Zze4MwAAAABJRU5ErkJggg==', 'covers', 'empty'],
  ['rgba16_marked', 'iVBORw0KGgoAAAANSUhEUgAAAA0AAAAHEAYAAACD4BtZAAAACXBIWXMAAAPoAAAD6AG1e1JrAAAAJUlEQVQokWPgYhBhkGP4/5/WNMOoRVyjQcdA48TwiwEEGeDmAwD2b8tTQcyqhAAAAABJRU5ErkJggg==', 'covers', 'covers'],
  ['grey_marked', 'iVBORw0KGgoAAAANSUhEUgAAAA0AAAAHCAAAAAD2G5jGAAAACXBIWXMAAAPoAAAD6AG1e1JrAAAAEUlEQVQImWMQRgYMVOf9EgYATTAHqTw7a9QAAAAASUVORK5CYII=', 'no_alpha', 'covers'],
  ['rgba_interlaced_unmarked', 'iVBORw0KGgoAAAANSUhEUgAAAA0AAAAHCAYAAAGkd/eMAAAACXBIWXMAAAPoAAAD6AG1e1JrAAAAI0lEQVQYlWPgEpH7D8IMGAysArg5XPi0ES3JQAcJsl1NVU0ARLNv+lZjs24AAAAASUVORK5CYII=', 'empty', 'empty'],
  ['palette_unmarked', 'iVBORw0KGgoAAAANSUhEUgAAAA0AAAAHAgMAAACuHi+JAAAAA1BMVEUKFB5+TFI6AAAACXBIWXMAAAPoAAAD6AG1e1JrAAAAC0lEQVQImWNgIAgAACMAATCzEiAAAAAASUVORK5CYII=', 'no_alpha', 'empty'],
  ['rgba16_unmarked', 'iVBORw0KGgoAAAANSUhEUgAAAA0AAAAHEAYAAACD4BtZAAAACXBIWXMAAAPoAAAD6AG1e1JrAAAAHklEQVQokWPgYhBhkGP4/5/WNMOoRVyjQcdA58QAAON4yp8LSbnvAAAAAElFTkSuQmCC', 'empty', 'empty'],
  ['grey_unmarked', 'iVBORw0KGgoAAAANSUhEUgAAAA0AAAAHCAAAAAD2G5jGAAAACXBIWXMAAAPoAAAD6AG1e1JrAAAAD0lEQVQImWMQRgYMNOABAEtiBsI9CzIvAAAAAElFTkSuQmCC', 'no_alpha', 'empty'],
];

describe('inspectPngMask agrees with sharp on files sharp wrote', () => {
  it.each(SHARP_FIXTURES)('%s', async (_name, b64, alpha, white) => {
    const bytes = decodeBase64(b64);
    expect(await inspectPngMask(bytes, 'alpha')).toBe(alpha);
    expect(await inspectPngMask(bytes, 'white')).toBe(white);
  });
});

describe('inspectPngMask refuses damaged files', () => {
  it('no IHDR', async () => {
    await expect(inspectPngMask(concat([PNG_SIGNATURE, pngChunk('IEND', new Uint8Array())]), 'alpha')).rejects.toBeInstanceOf(PngDecodeError);
  });

  it('an invalid colour type / depth pair', async () => {
    const bad = concat([PNG_SIGNATURE, ihdr(4, 4, 4, 6), pngChunk('IDAT', new Uint8Array([1, 2])), pngChunk('IEND', new Uint8Array())]);
    await expect(inspectPngMask(bad, 'alpha')).rejects.toThrow(/not valid PNG/);
  });

  it('a chunk that runs past the end of the file', async () => {
    const good = await encodePng({ width: 4, height: 4, colorType: 6, bitDepth: 8, pixel: () => [0, 0, 0, 255] });
    await expect(inspectPngMask(good.subarray(0, good.length - 20), 'alpha')).rejects.toBeInstanceOf(PngDecodeError);
  });

  it('image data that is not zlib', async () => {
    const bad = concat([PNG_SIGNATURE, ihdr(4, 4, 8, 6), pngChunk('IDAT', new Uint8Array([1, 2, 3, 4, 5])), pngChunk('IEND', new Uint8Array())]);
    await expect(inspectPngMask(bad, 'alpha')).rejects.toBeInstanceOf(PngDecodeError);
  });

  it('image data that ends early (one opaque row of four)', async () => {
    const { deflate } = await import('./helpers/png-encode');
    const short = concat([PNG_SIGNATURE, ihdr(4, 4, 8, 6), pngChunk('IDAT', await deflate(new Uint8Array([0, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255]))), pngChunk('IEND', new Uint8Array())]);
    await expect(inspectPngMask(short, 'alpha')).rejects.toThrow(/ends early/);
  });
});
