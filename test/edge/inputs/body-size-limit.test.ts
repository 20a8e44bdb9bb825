import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import type { AppEnv } from '../../../edge/src/env';
import { bodySizeLimit, readCappedStream } from '../../../edge/src/inputs/body-size-limit';
import { errorHandler } from '../../../edge/src/middleware/error-handler';
import type { ErrorBody } from '@image-api/shared/errors';

/** A tiny app: the cap, then a handler that echoes the body length it could read. */
function app(maxBytes: number) {
  const hono = new Hono<AppEnv>();
  hono.onError(errorHandler());
  hono.post('/upload', bodySizeLimit(maxBytes), async (c) => c.json({ length: (await c.req.arrayBuffer()).byteLength }));
  return hono;
}

function streamOf(chunks: number, chunkBytes: number): { stream: ReadableStream<Uint8Array>; pulled: () => number } {
  let pulled = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pulled >= chunks) return controller.close();
      pulled += 1;
      controller.enqueue(new Uint8Array(chunkBytes).fill(1));
    },
  });
  return { stream, pulled: () => pulled };
}

describe('bodySizeLimit', () => {
  it('passes a body within the cap on, readable again by the handler', async () => {
    const response = await app(1000).request('/upload', { method: 'POST', body: new Uint8Array(1000) });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ length: 1000 });
  });

  it('413 payload_too_large from a Content-Length over the cap', async () => {
    const response = await app(1000).request('/upload', { method: 'POST', body: new Uint8Array(1001) });
    expect(response.status).toBe(413);
    const body = (await response.json()) as ErrorBody;
    expect(body.error.code).toBe('payload_too_large');
    expect(body.error.type).toBe('invalid_request_error');
  });

  it('413 for a streamed body without Content-Length, reading no more than the cap', async () => {
    const { stream, pulled } = streamOf(100, 1000);
    const response = await app(10_000).request('/upload', { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    expect(response.status).toBe(413);
    expect(pulled()).toBeLessThanOrEqual(12);
  });
});

describe('readCappedStream', () => {
  it('concatenates the chunks in order', async () => {
    const stream = new Blob([new Uint8Array([1, 2]), new Uint8Array([3])]).stream();
    expect(await readCappedStream(stream, 3, 'x')).toEqual(new Uint8Array([1, 2, 3]));
  });

  it('throws the abort reason when the signal fires mid-read', async () => {
    const controller = new AbortController();
    const never = new ReadableStream<Uint8Array>({ pull: () => new Promise(() => undefined) });
    setTimeout(() => controller.abort(new Error('stop')), 20);
    await expect(readCappedStream(never, 100, 'x', null, controller.signal)).rejects.toThrow('stop');
  });
});
