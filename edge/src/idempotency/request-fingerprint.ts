import { parseJsonKeepingSeeds } from '../inputs/lossless-json';
import { ApiError } from '../lib/api-error';
import { toHex } from '../lib/crypto';

/** Largest request body the idempotency layer reads to fingerprint (bigger bodies are refused, 413). */
export const IDEMPOTENCY_MAX_BODY_BYTES = 32 * 1024 * 1024;

const encoder = new TextEncoder();

async function sha256Hex(data: Uint8Array | string): Promise<string> {
  return toHex(await crypto.subtle.digest('SHA-256', typeof data === 'string' ? encoder.encode(data) : data));
}

/** Read a body into memory, refusing more than `maxBytes`. @throws ApiError 413 `payload_too_large`. */
export async function readCapped(body: ReadableStream<Uint8Array> | null, maxBytes: number): Promise<Uint8Array> {
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw new ApiError(413, 'invalid_request_error', 'payload_too_large', `The request body is larger than ${maxBytes} bytes.`);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

/** JSON with object keys sorted at every level, so key order and whitespace do not change the text. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** A form as text independent of the multipart boundary: fields by name (stable), files by name, type and SHA-256. */
async function canonicalForm(form: FormData): Promise<string> {
  const parts: [string, string][] = [];
  for (const [name, value] of form.entries()) {
    if (typeof value === 'string') {
      parts.push([name, JSON.stringify(value)]);
    } else {
      const file = value as File;
      const digest = await sha256Hex(new Uint8Array(await file.arrayBuffer()));
      parts.push([name, `file(${JSON.stringify(file.name)},${JSON.stringify(file.type)},${file.size},${digest})`]);
    }
  }
  parts.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return parts.map(([name, value]) => `${JSON.stringify(name)}=${value}`).join('\n');
}

/**
 * SHA-256 hex of what makes a request "the same request" for an Idempotency-Key: method, path,
 * query, media type and body. JSON bodies count by content (key order and whitespace ignored);
 * multipart and urlencoded forms by their fields and files (the random multipart boundary, which
 * a client's retry may change, is ignored); other bodies byte for byte. Reads a clone, so the
 * route can still read the request.
 * @throws ApiError 413 `payload_too_large` over IDEMPOTENCY_MAX_BODY_BYTES.
 */
export async function requestFingerprint(request: Request, maxBytes = IDEMPOTENCY_MAX_BODY_BYTES): Promise<string> {
  const url = new URL(request.url);
  const contentType = request.headers.get('content-type') ?? '';
  const mediaType = contentType.split(';')[0].trim().toLowerCase();
  const bytes = await readCapped(request.clone().body, maxBytes);
  let body: string | null = null;
  if (mediaType === 'application/json' || mediaType.endsWith('+json')) {
    try {
      body = `json:${canonicalJson(parseJsonKeepingSeeds(new TextDecoder().decode(bytes)))}`;
    } catch {
      body = null; // not JSON after all: compare bytes
    }
  } else if (mediaType === 'multipart/form-data' || mediaType === 'application/x-www-form-urlencoded') {
    try {
      body = `form:${await canonicalForm(await new Response(bytes, { headers: { 'content-type': contentType } }).formData())}`;
    } catch {
      body = null;
    }
  }
  const head = `${request.method}\n${url.pathname}\n${url.search}\n${mediaType}\n`;
  return sha256Hex(head + (body ?? `bytes:${await sha256Hex(bytes)}`));
}
