import { describe, expect, it } from 'vitest';
import { decodeDataUrl, decodeImageBase64, imageStringKind } from '../../../edge/src/inputs/image-string';
import { ApiError } from '../../../edge/src/lib/api-error';

describe('image strings', () => {
  it('classifies data: URLs, other URLs and bare base64', () => {
    expect(imageStringKind('data:image/png;base64,iVBORw0KGgo=')).toBe('data_url');
    expect(imageStringKind('DATA:image/png;base64,AAAA')).toBe('data_url');
    expect(imageStringKind('https://images.example.com/a.png')).toBe('url');
    expect(imageStringKind('file:///etc/passwd')).toBe('url');
    expect(imageStringKind('iVBORw0KGgoAAAANSUhEUg==')).toBe('base64');
  });

  it('decodes standard and URL-safe base64, with whitespace and without padding', () => {
    expect(decodeImageBase64('AQID', 'image')).toEqual(new Uint8Array([1, 2, 3]));
    expect(decodeImageBase64('AQI', 'image')).toEqual(new Uint8Array([1, 2]));
    expect(decodeImageBase64('+/8=', 'image')).toEqual(new Uint8Array([0xfb, 0xff]));
    expect(decodeImageBase64('-_8', 'image')).toEqual(new Uint8Array([0xfb, 0xff]));
    expect(decodeImageBase64('AQ\nID', 'image')).toEqual(new Uint8Array([1, 2, 3]));
  });

  it('400 invalid_image for text that is not base64', () => {
    expect(() => decodeImageBase64('not base64 at all!', 'image')).toThrow(ApiError);
    expect(() => decodeImageBase64('', 'image')).toThrow(/not valid base64/);
  });

  it('decodes base64 data URLs and refuses percent-encoded ones', () => {
    expect(decodeDataUrl('data:image/png;base64,AQID', 'image_url')).toEqual(new Uint8Array([1, 2, 3]));
    expect(() => decodeDataUrl('data:image/svg+xml,<svg/>', 'image_url')).toThrow(/base64 data URL/);
  });
});
