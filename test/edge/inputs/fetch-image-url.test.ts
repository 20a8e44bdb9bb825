import { describe, expect, it, vi } from 'vitest';
import { fetchImageUrl } from '../../../edge/src/inputs/fetch-image-url';
import { ApiError } from '../../../edge/src/lib/api-error';

/** A fake internet: URL → response factory; every URL requested is recorded. */
function fakeInternet(routes: Record<string, () => Response | Promise<Response>>) {
  const requested: string[] = [];
  const impl = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new Request(input, init).url;
    requested.push(url);
    expect(init?.redirect).toBe('manual');
    const route = routes[url];
    if (!route) throw new TypeError(`no route to ${url}`);
    return route();
  });
  return { fetch: impl as unknown as typeof fetch, requested };
}

const redirect = (to: string, status = 302) => () => new Response(null, { status, headers: { location: to } });
const bytes = (n: number) => () => new Response(new Uint8Array(n).fill(7));

async function failure(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ApiError) return error;
    throw error;
  }
  throw new Error('expected an ApiError');
}

describe('fetchImageUrl', () => {
  it('returns the body of a public https URL', async () => {
    const net = fakeInternet({ 'https://images.example.com/cat.png': bytes(10) });
    const body = await fetchImageUrl('https://images.example.com/cat.png', { param: 'image_url', fetch: net.fetch });
    expect(body).toEqual(new Uint8Array(10).fill(7));
  });

  it('refuses a private address before any request is made', async () => {
    const net = fakeInternet({});
    const error = await failure(fetchImageUrl('https://10.0.0.5/a.png', { param: 'image_url', fetch: net.fetch }));
    expect(error).toMatchObject({ status: 400, code: 'invalid_image_url', param: 'image_url' });
    expect(net.requested).toEqual([]);
  });

  it.each([
    ['loopback', 'http://127.0.0.1:8788/v1/models'],
    ['cloud metadata', 'http://169.254.169.254/latest/meta-data/'],
    ['IPv6 loopback', 'https://[::1]/a.png'],
    ['localhost', 'https://localhost/a.png'],
    ['a private network', 'https://192.168.1.1/router.png'],
  ])('follows no redirect to %s (the target is never requested)', async (_what, target) => {
    const net = fakeInternet({ 'https://images.example.com/r': redirect(target) });
    const error = await failure(fetchImageUrl('https://images.example.com/r', { param: 'image_url', fetch: net.fetch, allowHttp: false }));
    expect(error).toMatchObject({ status: 400, code: 'invalid_image_url', param: 'image_url' });
    expect(error.message).toContain('redirected');
    expect(net.requested).toEqual(['https://images.example.com/r']);
  });

  it('refuses a redirect from https down to http', async () => {
    const net = fakeInternet({ 'https://images.example.com/r': redirect('http://images.example.com/a.png') });
    const error = await failure(fetchImageUrl('https://images.example.com/r', { param: 'image_url', fetch: net.fetch }));
    expect(error.code).toBe('invalid_image_url');
    expect(error.message).toContain('https');
  });

  it('follows up to 3 redirects (relative Location resolved against the current URL)', async () => {
    const net = fakeInternet({
      'https://a.example.com/1': redirect('https://b.example.com/2', 301),
      'https://b.example.com/2': redirect('/3', 307),
      'https://b.example.com/3': redirect('https://c.example.com/final.png', 308),
      'https://c.example.com/final.png': bytes(4),
    });
    const body = await fetchImageUrl('https://a.example.com/1', { param: 'image_url', fetch: net.fetch });
    expect(body.length).toBe(4);
    expect(net.requested).toHaveLength(4);
  });

  it('stops at the 4th redirect', async () => {
    const net = fakeInternet({
      'https://a.example.com/1': redirect('https://a.example.com/2'),
      'https://a.example.com/2': redirect('https://a.example.com/3'),
      'https://a.example.com/3': redirect('https://a.example.com/4'),
      'https://a.example.com/4': redirect('https://a.example.com/5'),
      'https://a.example.com/5': bytes(4),
    });
    const error = await failure(fetchImageUrl('https://a.example.com/1', { param: 'image_url', fetch: net.fetch }));
    expect(error).toMatchObject({ status: 400, code: 'image_url_fetch_failed' });
    expect(error.message).toContain('more than 3');
    expect(net.requested).not.toContain('https://a.example.com/5');
  });

  it('a redirect without Location fails', async () => {
    const net = fakeInternet({ 'https://a.example.com/1': () => new Response(null, { status: 302 }) });
    expect((await failure(fetchImageUrl('https://a.example.com/1', { param: 'image_url', fetch: net.fetch }))).code).toBe('image_url_fetch_failed');
  });

  it('a non-2xx answer fails with its status', async () => {
    const net = fakeInternet({ 'https://a.example.com/missing.png': () => new Response('nope', { status: 404 }) });
    const error = await failure(fetchImageUrl('https://a.example.com/missing.png', { param: 'image_url', fetch: net.fetch }));
    expect(error.code).toBe('image_url_fetch_failed');
    expect(error.message).toContain('404');
  });

  it('a network error fails cleanly', async () => {
    const net = fakeInternet({});
    expect((await failure(fetchImageUrl('https://unreachable.example.com/a.png', { param: 'image_url', fetch: net.fetch }))).code).toBe(
      'image_url_fetch_failed',
    );
  });

  it('413 for a declared Content-Length over the cap, without reading the body', async () => {
    let pulled = 0;
    const net = fakeInternet({
      'https://a.example.com/big.png': () =>
        new Response(
          new ReadableStream({
            pull(controller) {
              pulled += 1;
              controller.enqueue(new Uint8Array(1024));
            },
          }),
          { headers: { 'content-length': String(50 * 1024 * 1024) } },
        ),
    });
    const error = await failure(fetchImageUrl('https://a.example.com/big.png', { param: 'image_url', fetch: net.fetch, maxBytes: 1024 * 1024 }));
    expect(error).toMatchObject({ status: 413, code: 'payload_too_large', param: 'image_url' });
    expect(pulled).toBeLessThanOrEqual(1);
  });

  it('413 for an undeclared body that grows past the cap (stops reading there)', async () => {
    let sent = 0;
    const net = fakeInternet({
      'https://a.example.com/endless.png': () =>
        new Response(
          new ReadableStream({
            pull(controller) {
              sent += 64 * 1024;
              controller.enqueue(new Uint8Array(64 * 1024));
            },
          }),
        ),
    });
    const error = await failure(fetchImageUrl('https://a.example.com/endless.png', { param: 'image_url', fetch: net.fetch, maxBytes: 256 * 1024 }));
    expect(error.status).toBe(413);
    expect(sent).toBeLessThan(1024 * 1024);
  });

  it('times out a server that never answers', async () => {
    const impl = vi.fn((_input: RequestInfo | URL, init?: RequestInit) => {
      return new Promise<Response>((_resolve, reject) => {
        init?.signal?.addEventListener('abort', () => reject(init.signal!.reason));
      });
    });
    const started = Date.now();
    const error = await failure(fetchImageUrl('https://slow.example.com/a.png', { param: 'image_url', fetch: impl as unknown as typeof fetch, timeoutMs: 200 }));
    expect(error.code).toBe('image_url_fetch_failed');
    expect(error.message).toContain('longer than 0.2 s');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('times out a body that trickles forever', async () => {
    const net = fakeInternet({
      'https://slow.example.com/a.png': () =>
        new Response(
          new ReadableStream({
            async pull(controller) {
              await new Promise((r) => setTimeout(r, 50));
              controller.enqueue(new Uint8Array(1));
            },
          }),
        ),
    });
    const started = Date.now();
    // The fake stream ignores the abort signal: the reader itself must stop at the deadline.
    const error = await failure(fetchImageUrl('https://slow.example.com/a.png', { param: 'image_url', fetch: net.fetch, timeoutMs: 300 }));
    expect(error.code).toBe('image_url_fetch_failed');
    expect(error.message).toContain('longer than 0.3 s');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('http is fetched only with allowHttp', async () => {
    const net = fakeInternet({ 'http://images.example.com/a.png': bytes(3) });
    expect((await failure(fetchImageUrl('http://images.example.com/a.png', { param: 'image_url', fetch: net.fetch }))).code).toBe('invalid_image_url');
    expect(await fetchImageUrl('http://images.example.com/a.png', { param: 'image_url', fetch: net.fetch, allowHttp: true })).toHaveLength(3);
  });
});
