import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { formatOfExtension, sniffImageFormat } from '../../cli/src/image-format';

describe('image formats', () => {
  it('recognises real PNG, JPEG and WebP files by their magic bytes', async () => {
    const base = sharp({ create: { width: 8, height: 8, channels: 3, background: '#808080' } });
    expect(sniffImageFormat(await base.clone().png().toBuffer())).toBe('png');
    expect(sniffImageFormat(await base.clone().jpeg().toBuffer())).toBe('jpeg');
    expect(sniffImageFormat(await base.clone().webp().toBuffer())).toBe('webp');
    expect(sniffImageFormat(Buffer.from('GIF89a....'))).toBeNull();
    expect(sniffImageFormat(new Uint8Array([0x89, 0x50]))).toBeNull();
  });

  it('maps extensions to formats, case-insensitively', () => {
    expect(formatOfExtension('.PNG')).toBe('png');
    expect(formatOfExtension('.jpg')).toBe('jpeg');
    expect(formatOfExtension('.jpeg')).toBe('jpeg');
    expect(formatOfExtension('.webp')).toBe('webp');
    expect(formatOfExtension('.gif')).toBeNull();
    expect(formatOfExtension('')).toBeNull();
  });
});
