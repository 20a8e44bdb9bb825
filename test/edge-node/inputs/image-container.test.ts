/**
 * sanitizeImageContainer (edge/src/inputs/image-container.ts) on files written by libvips: run in the Node
 * project, not in workerd, because it needs sharp to write real PNG/JPEG/WebP files with EXIF (GPS), XMP
 * and ICC metadata and to decode the cleaned files again (issue 10 items 6 and 7).
 */
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { sanitizeImageContainer } from '../../../edge/src/inputs/image-container';
import type { InputImageType } from '../../../edge/src/inputs/image-header';
import { ApiError } from '../../../edge/src/lib/api-error';

const W = 61;
const H = 37;
const XMP = '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>Jane Secret</dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>';
const EXIF = {
  IFD0: { Make: 'SecretCam', Model: 'X100', Software: 'home-pc', Orientation: '6' },
  IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 2400/100', GPSLongitudeRef: 'E', GPSLongitude: '2/1 21/1 300/100' },
};

/** A noisy test picture (so the codecs have real work), RGB. */
function pixels(): Buffer {
  const raw = Buffer.alloc(W * H * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 37 + ((i / 3) | 0) * 11) & 0xff;
  return raw;
}

async function write(type: InputImageType, options: { progressive?: boolean } = {}): Promise<Uint8Array> {
  let image = sharp(pixels(), { raw: { width: W, height: H, channels: 3 } }).withExif(EXIF).withXmp(XMP).withIccProfile('p3');
  if (type === 'png') image = image.png();
  if (type === 'jpeg') image = image.jpeg({ quality: 90, progressive: options.progressive ?? false });
  if (type === 'webp') image = image.webp({ lossless: true });
  return new Uint8Array(await image.toBuffer());
}

async function decoded(bytes: Uint8Array): Promise<Buffer> {
  return sharp(bytes).raw().toBuffer();
}

function ascii(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('latin1');
}

const CASES: Array<[string, InputImageType, { progressive?: boolean }]> = [
  ['PNG', 'png', {}],
  ['baseline JPEG', 'jpeg', {}],
  ['progressive JPEG (several scans)', 'jpeg', { progressive: true }],
  ['lossless WebP (VP8X)', 'webp', {}],
];

describe('metadata is removed, the image is untouched', () => {
  it.each(CASES)('%s: no EXIF/GPS/XMP left, same pixels, ICC profile kept', async (_name, type, options) => {
    const original = await write(type, options);
    const before = await sharp(original).metadata();
    // The file really carries the metadata (else this test could not fail).
    expect(before.exif).toBeDefined();
    expect(before.xmp).toBeDefined();
    expect(ascii(original)).toContain('SecretCam');

    const cleaned = sanitizeImageContainer(original, type, 'image');
    const after = await sharp(cleaned).metadata();
    expect(after.exif).toBeUndefined();
    expect(after.xmp).toBeUndefined();
    expect(after.orientation).toBeUndefined();
    expect(after.icc).toEqual(before.icc);
    expect({ width: after.width, height: after.height, format: after.format }).toEqual({ width: W, height: H, format: before.format });
    for (const secret of ['SecretCam', 'home-pc', 'Jane Secret', 'GPS', 'Exif']) expect(ascii(cleaned)).not.toContain(secret);
    expect((await decoded(cleaned)).equals(await decoded(original))).toBe(true);
    // A clean file stays as it is: the same array, not a copy.
    expect(sanitizeImageContainer(cleaned, type, 'image')).toBe(cleaned);
  });

  it.each(CASES)('%s in place: the same file as the copy, no metadata left anywhere in the buffer', async (_name, type, options) => {
    const original = await write(type, options);
    const copy = sanitizeImageContainer(original, type, 'image');
    const own = original.slice();
    const cleaned = sanitizeImageContainer(own, type, 'image', { inPlace: true });
    expect(cleaned.buffer).toBe(own.buffer);
    expect(cleaned.byteOffset).toBe(0);
    expect(cleaned).toEqual(copy);
    // The removed bytes past the view are zeroed, so even the whole buffer holds no secret.
    for (const secret of ['SecretCam', 'home-pc', 'Jane Secret']) expect(ascii(own)).not.toContain(secret);
    expect(own.subarray(cleaned.length).every((byte) => byte === 0)).toBe(true);
    expect((await decoded(cleaned)).equals(await decoded(original))).toBe(true);
  });
});

describe('a file that is not whole is a 400 naming the field', () => {
  it.each(CASES)('%s cut short', async (_name, type, options) => {
    const original = await write(type, options);
    // PNG: 13 bytes short cuts into the last IDAT chunk's CRC (its IEND is 12 bytes).
    const cuts = [Math.floor(original.length * 0.1), Math.floor(original.length / 2), original.length - (type === 'png' ? 13 : 1)];
    for (const cut of cuts) {
      let error: unknown;
      try {
        sanitizeImageContainer(original.subarray(0, cut), type, 'request.image_base64');
      } catch (caught) {
        error = caught;
      }
      // In place too: refused the same way, and the caller's bytes are left as they were.
      const own = original.slice(0, cut);
      expect(() => sanitizeImageContainer(own, type, 'request.image_base64', { inPlace: true })).toThrow(ApiError);
      expect(own).toEqual(original.subarray(0, cut));
      expect(error, `cut at ${cut} of ${original.length}`).toBeInstanceOf(ApiError);
      expect((error as ApiError).toBody().error).toMatchObject({ code: 'invalid_image', param: 'request.image_base64' });
      expect((error as ApiError).status).toBe(400);
      // libvips refuses these files too: what the edge refuses would have failed on the GPU service.
      await expect(sharp(original.subarray(0, cut)).raw().toBuffer()).rejects.toThrow();
    }
  });

  it('a PNG whose IEND chunk lost (part of) its CRC is read, as libpng reads it, and comes out whole', async () => {
    const original = new Uint8Array(await sharp(pixels(), { raw: { width: W, height: H, channels: 3 } }).png().toBuffer());
    for (const missing of [1, 3]) {
      const cut = original.subarray(0, original.length - missing);
      expect(sanitizeImageContainer(cut, 'png', 'image')).toEqual(original);
      expect(sanitizeImageContainer(cut.slice(), 'png', 'image', { inPlace: true })).toEqual(original);
      expect((await decoded(cut)).equals(await decoded(original))).toBe(true);
    }
  });
});
