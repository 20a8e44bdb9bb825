import { decodeBase64 } from '../lib/base64';
import { invalidImage } from './input-errors';

/** How a string image field was written. */
export type ImageStringKind = 'url' | 'data_url' | 'base64';

const SCHEME = /^[a-zA-Z][a-zA-Z0-9+.-]*:/;
const DATA_URL = /^data:([^,]*),(.*)$/s;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Classify a string image field: a `data:` URL, another URL (anything with a scheme; the URL guard
 * decides whether it is fetched), or bare base64 (base64 has no ':').
 */
export function imageStringKind(value: string): ImageStringKind {
  const trimmed = value.trimStart();
  if (/^data:/i.test(trimmed)) return 'data_url';
  if (SCHEME.test(trimmed)) return 'url';
  return 'base64';
}

/**
 * Decode standard or URL-safe base64 (RFC 4648 §4/§5; whitespace and missing padding tolerated).
 * @throws ApiError 400 `invalid_image` naming `param`.
 */
export function decodeImageBase64(text: string, param: string): Uint8Array {
  let clean = text.replace(/\s+/g, '').replace(/-/g, '+').replace(/_/g, '/');
  if (clean.length % 4 !== 0 && !clean.endsWith('=')) clean += '='.repeat((4 - (clean.length % 4)) % 4);
  if (clean.length === 0 || !BASE64.test(clean)) throw invalidImage(`${param} is not valid base64.`, param);
  try {
    return decodeBase64(clean);
  } catch {
    throw invalidImage(`${param} is not valid base64.`, param);
  }
}

/**
 * Decode a `data:[<mediatype>];base64,<data>` URL (RFC 2397). Only base64 payloads are accepted;
 * the declared media type is ignored (magic bytes decide the type later).
 * @throws ApiError 400 `invalid_image` naming `param`.
 */
export function decodeDataUrl(value: string, param: string): Uint8Array {
  const match = DATA_URL.exec(value.trim());
  if (!match || !/;base64$/i.test(match[1])) {
    throw invalidImage(`${param} must be a base64 data URL (data:image/png;base64,...).`, param);
  }
  return decodeImageBase64(match[2], param);
}
