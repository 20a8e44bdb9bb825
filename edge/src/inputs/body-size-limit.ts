import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../env';
import { MAX_BODY_BYTES } from './input-limits';
import { payloadTooLarge } from './input-errors';

/**
 * Read a byte stream to the end, refusing it as soon as more than `maxBytes` arrived (the stream is
 * cancelled; nothing beyond the limit is buffered). When `signal` aborts, the read stops at once
 * (even on a source that ignores the signal) and the signal's reason is thrown.
 * @param param the field named in the error (null for a whole request body).
 * @throws ApiError 413 `payload_too_large`; `signal.reason` when aborted.
 */
export async function readCappedStream(
  stream: ReadableStream<Uint8Array>,
  maxBytes: number,
  what: string,
  param: string | null = null,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  const reader = stream.getReader();
  // Cancelling settles a pending read as done; the aborted check below turns that into an error.
  const onAbort = () => void reader.cancel(signal?.reason).catch(() => undefined);
  signal?.addEventListener('abort', onAbort);
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      signal?.throwIfAborted();
      const { done, value } = await reader.read();
      signal?.throwIfAborted();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel().catch(() => undefined);
        throw payloadTooLarge(`${what} is larger than ${formatBytes(maxBytes)}.`, param);
      }
      chunks.push(value);
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/** "20 MiB" / "512 KiB" / "100 bytes". */
export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}

/**
 * Hono middleware capping the request body at `maxBytes` (default MAX_BODY_BYTES = 20 MiB).
 * A Content-Length over the cap is refused before anything is read; otherwise the body is read
 * while counting (Content-Length can be absent with chunked uploads, so it is never trusted
 * alone) and handed on as a buffered request, so later `c.req.json()` / `formData()` work as usual.
 * @throws ApiError 413 `payload_too_large` (param null).
 */
export function bodySizeLimit(maxBytes: number = MAX_BODY_BYTES): MiddlewareHandler<AppEnv> {
  return async function limitBody(c, next) {
    const raw = c.req.raw;
    if (!raw.body) return next();
    const declared = raw.headers.get('content-length');
    if (declared !== null && Number(declared) > maxBytes) {
      throw payloadTooLarge(`The request body (${declared} bytes) is larger than ${formatBytes(maxBytes)}.`);
    }
    const bytes = await readCappedStream(raw.body, maxBytes, 'The request body');
    c.req.raw = new Request(raw, { body: bytes });
    await next();
  };
}
