import { env } from 'cloudflare:workers';
import { beforeAll, describe, expect, it } from 'vitest';
import { newApiKeyRecord } from '@image-api/shared/api/api-key';
import type { ErrorBody } from '@image-api/shared/errors';
import { buildApp } from '../../../edge/src/app';
import { MAX_BODY_BYTES } from '../../../edge/src/inputs/input-limits';

/** Every POST route that takes a body (issue 10 item 2). */
const ROUTES = [
  '/v1/images/generations',
  '/api/images/generations',
  '/v1/images/edits',
  '/v1/images/variations',
  '/v1/img2img',
  '/v3/async/txt2img',
  '/v3/async/img2img',
  '/v3/async/inpainting',
];

const CHUNK = 1024 * 1024;

/** A body of `chunks` × 1 MiB without Content-Length (chunked upload), counting the chunks pulled from it. */
function counted(chunks: number, first: Uint8Array): { stream: ReadableStream<Uint8Array>; pulled: () => number } {
  let pulled = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pulled >= chunks) return controller.close();
      pulled += 1;
      controller.enqueue(pulled === 1 ? first : new Uint8Array(CHUNK).fill(0x61));
    },
  });
  return { stream, pulled: () => pulled };
}

async function expect413(response: Response): Promise<void> {
  expect(response.status).toBe(413);
  const body = (await response.json()) as ErrorBody;
  expect(body.error.code).toBe('payload_too_large');
}

describe('one body cap, applied before any middleware reads the body', () => {
  let key: string;
  beforeAll(async () => {
    key = `sk-cap-${crypto.randomUUID()}`;
    const record = await newApiKeyRecord(key, { name: 'cap', tenant: 'tenant-cap' });
    await env.API_KEYS.put(record.key_hash, JSON.stringify(record));
  });

  it('413 on every route for a JSON body over MAX_BODY_BYTES with Content-Length', async () => {
    const app = buildApp();
    const prompt = 'a'.repeat(MAX_BODY_BYTES);
    const body = JSON.stringify({ prompt, request: { prompt } });
    for (const route of ROUTES) {
      const response = await app.request(route, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body }, env);
      await expect413(response);
    }
  });

  it('413 on every route for a multipart body over the cap', async () => {
    const app = buildApp();
    const form = new FormData();
    form.set('prompt', 'x');
    form.set('link_ttl_seconds', '120');
    form.set('image', new File([new Uint8Array(MAX_BODY_BYTES + 1)], 'big.png', { type: 'image/png' }));
    for (const route of ROUTES) {
      const response = await app.request(route, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: form }, env);
      await expect413(response);
    }
    // Within the cap the form still reaches link-TTL and the route (12 s is below MIN_LINK_TTL_SECONDS).
    const small = new FormData();
    small.set('prompt', 'x');
    small.set('link_ttl_seconds', '12');
    const response = await app.request('/v1/images/edits', { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: small }, env);
    expect(response.status).toBe(400);
    expect(((await response.json()) as ErrorBody).error.param).toBe('link_ttl_seconds');
  });

  it('413 for a chunked body without Content-Length, and nothing (link-TTL included) reads past the cap', async () => {
    const app = buildApp();
    const cappedChunks = MAX_BODY_BYTES / CHUNK;
    for (const route of ROUTES) {
      const boundary = 'cap-boundary';
      const head = new TextEncoder().encode(
        `--${boundary}\r\nContent-Disposition: form-data; name="link_ttl_seconds"\r\n\r\n120\r\n` +
          `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n`,
      );
      // 3× the cap: a middleware parsing the form (or JSON) whole would pull all of it.
      const { stream, pulled } = counted(3 * cappedChunks, head);
      const json = route.startsWith('/v3') || route.endsWith('generations') || route === '/v1/img2img';
      const response = await app.request(
        route,
        {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': json ? 'application/json' : `multipart/form-data; boundary=${boundary}` },
          body: stream,
          duplex: 'half',
        } as RequestInit,
        env,
      );
      await expect413(response);
      expect(pulled(), route).toBeLessThanOrEqual(cappedChunks + 2);
    }
  });
});
