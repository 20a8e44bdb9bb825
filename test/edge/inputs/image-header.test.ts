import { describe, expect, it } from 'vitest';
import { inspectImageHeader, sniffImageType } from '../../../edge/src/inputs/image-header';
import { MAX_INPUT_PIXELS } from '../../../edge/src/inputs/input-limits';
import { ApiError } from '../../../edge/src/lib/api-error';
import { alphaMaskPng, jpegHeader, pngHeaderOnly, webpHeader } from './helpers/png-encode';

function thrown(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ApiError) return error;
    throw error;
  }
  throw new Error('expected an ApiError');
}

const ascii = (text: string) => new Uint8Array(Array.from(text, (ch) => ch.charCodeAt(0)));

describe('sniffImageType: magic bytes decide, never names or declared types', () => {
  it('recognises PNG, JPEG and WebP', async () => {
    expect(sniffImageType(await alphaMaskPng(4, 4, () => false))).toBe('png');
    expect(sniffImageType(jpegHeader(10, 10))).toBe('jpeg');
    expect(sniffImageType(webpHeader(10, 10))).toBe('webp');
  });

  it('refuses everything else', () => {
    expect(sniffImageType(ascii('GIF89a....'))).toBeNull();
    expect(sniffImageType(ascii('<svg xmlns="http://www.w3.org/2000/svg"/>'))).toBeNull();
    expect(sniffImageType(ascii('RIFF\0\0\0\0WAVEfmt '))).toBeNull();
    expect(sniffImageType(new Uint8Array([0x89, 0x50, 0x4e]))).toBeNull();
    expect(sniffImageType(new Uint8Array())).toBeNull();
  });
});

describe('inspectImageHeader', () => {
  it('reads the dimensions of each accepted type from the header', async () => {
    expect(inspectImageHeader(await alphaMaskPng(24, 16, () => false), 'image')).toMatchObject({
      type: 'png',
      mimeType: 'image/png',
      extension: 'png',
      width: 24,
      height: 16,
    });
    expect(inspectImageHeader(jpegHeader(640, 480), 'image')).toMatchObject({ type: 'jpeg', extension: 'jpg', width: 640, height: 480 });
    expect(inspectImageHeader(webpHeader(300, 200), 'image')).toMatchObject({ type: 'webp', width: 300, height: 200 });
  });

  it('415 for a GIF, naming the field and what was sent', () => {
    const error = thrown(() => inspectImageHeader(ascii('GIF89a\x10\x00\x10\x00'), 'mask'));
    expect(error.status).toBe(415);
    expect(error.code).toBe('unsupported_media_type');
    expect(error.param).toBe('mask');
    expect(error.message).toContain('GIF');
  });

  it('415 for an SVG (scriptable; never passed on)', () => {
    const error = thrown(() => inspectImageHeader(ascii('<?xml version="1.0"?><svg/>'), 'image'));
    expect(error.status).toBe(415);
    expect(error.message).toContain('SVG');
  });

  it('a decompression bomb is refused from its header alone: 50000x50000 PNG of ~60 bytes', () => {
    const bomb = pngHeaderOnly(50_000, 50_000);
    expect(bomb.length).toBeLessThan(100);
    const error = thrown(() => inspectImageHeader(bomb, 'image'));
    expect(error.status).toBe(400);
    expect(error.code).toBe('image_too_large');
    expect(error.param).toBe('image');
    expect(error.message).toContain('50000x50000');
  });

  it('refuses one side over 4096 even when the pixel count is small', () => {
    expect(thrown(() => inspectImageHeader(pngHeaderOnly(8192, 8), 'image')).code).toBe('image_too_large');
  });

  it('accepts exactly 4096x4096 and refuses one pixel more per side', () => {
    expect(4096 * 4096).toBe(MAX_INPUT_PIXELS);
    expect(inspectImageHeader(pngHeaderOnly(4096, 4096), 'image').width).toBe(4096);
    expect(thrown(() => inspectImageHeader(pngHeaderOnly(4097, 4096), 'image')).code).toBe('image_too_large');
  });

  it('JPEG and WebP bombs are refused the same way', () => {
    expect(thrown(() => inspectImageHeader(jpegHeader(30_000, 30_000), 'image')).code).toBe('image_too_large');
    expect(thrown(() => inspectImageHeader(webpHeader(16_000, 16_000), 'image')).code).toBe('image_too_large');
  });

  it('400 invalid_image for a PNG signature with a truncated header', () => {
    const truncated = pngHeaderOnly(10, 10).subarray(0, 14);
    const error = thrown(() => inspectImageHeader(truncated, 'image'));
    expect(error.status).toBe(400);
    expect(error.code).toBe('invalid_image');
  });

  it('400 invalid_image for a JPEG without a frame header', () => {
    expect(thrown(() => inspectImageHeader(new Uint8Array([0xff, 0xd8, 0xff, 0xd9]), 'image')).code).toBe('invalid_image');
  });
});
