import { env, exports } from 'cloudflare:workers';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../../../edge/src/app';
import { signFileLink } from '../../../edge/src/storage/signed-links';
import type { ErrorBody } from '@image-api/shared/errors';
import { solidPng } from '../helpers/png';

const ORIGIN = 'https://edge.test';
const KEY = 'tenant-a/2026/01/02/task-1/0.png';
let png: Uint8Array;

async function link(key: string, nowSeconds: number, ttlSeconds = 3600, secret = env.LINK_SIGNING_SECRET): Promise<URL> {
  return new URL((await signFileLink({ origin: ORIGIN, key, secret, ttlSeconds, nowSeconds })).url);
}

function get(url: URL | string): Promise<Response> {
  return exports.default.fetch(url.toString());
}

async function expectRefused(response: Response, code: string): Promise<void> {
  expect(response.status).toBe(403);
  const body = (await response.json()) as ErrorBody;
  expect(body.error).toMatchObject({ code, type: 'permission_error', param: null });
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

describe('GET /v1/files/* (signed links)', () => {
  beforeAll(async () => {
    png = await solidPng(8, 8, [255, 0, 0]);
    await env.IMAGES.put(KEY, png, { httpMetadata: { contentType: 'image/png' } });
    await env.IMAGES.put('tenant-a/2026/01/02/task-1/1.png', await solidPng(8, 8, [0, 0, 255]), {
      httpMetadata: { contentType: 'image/png' },
    });
  });
  afterEach(() => vi.useRealTimers());

  it('serves the object for a valid link, without any Bearer key', async () => {
    const response = await get(await link(KEY, nowSeconds()));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('image/png');
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(png);
  });

  it('refuses a link whose signature was changed', async () => {
    const url = await link(KEY, nowSeconds());
    const sig = url.searchParams.get('sig')!;
    url.searchParams.set('sig', (sig[0] === '0' ? '1' : '0') + sig.slice(1));
    await expectRefused(await get(url), 'invalid_signature');
  });

  it('refuses a link whose key was changed (another image of the same task)', async () => {
    const url = await link(KEY, nowSeconds());
    url.pathname = url.pathname.replace('/0.png', '/1.png');
    await expectRefused(await get(url), 'invalid_signature');
  });

  it('refuses a link whose expiry was pushed later', async () => {
    const url = await link(KEY, nowSeconds());
    url.searchParams.set('exp', String(Number(url.searchParams.get('exp')) + 86_400));
    await expectRefused(await get(url), 'invalid_signature');
  });

  it('refuses a link signed with another secret', async () => {
    await expectRefused(await get(await link(KEY, nowSeconds(), 3600, 'not-the-secret')), 'invalid_signature');
  });

  it('refuses links without exp or sig', async () => {
    const url = await link(KEY, nowSeconds());
    const noSig = new URL(url);
    noSig.searchParams.delete('sig');
    const noExp = new URL(url);
    noExp.searchParams.delete('exp');
    await expectRefused(await get(noSig), 'invalid_signature');
    await expectRefused(await get(noExp), 'invalid_signature');
    await expectRefused(await get(`${ORIGIN}/v1/files/${KEY}`), 'invalid_signature');
  });

  it('refuses a correctly signed link whose exp is in the past', async () => {
    await expectRefused(await get(await link(KEY, nowSeconds() - 7200)), 'link_expired');
  });

  it('refuses a link once the clock passes its expiry (injected clock)', async () => {
    const t0 = 1_800_000_000_000;
    const url = await link(KEY, t0 / 1000, 3600);
    const before = buildApp({ now: () => t0 + 3599_000 });
    const after = buildApp({ now: () => t0 + 3600_000 });
    expect((await before.request(url.toString(), {}, env)).status).toBe(200);
    await expectRefused(await after.request(url.toString(), {}, env), 'link_expired');
  });

  it('refuses a link once the clock passes its expiry (faked system time)', async () => {
    const url = await link(KEY, nowSeconds(), 60);
    expect((await get(url)).status).toBe(200);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 61_000);
    await expectRefused(await get(url), 'link_expired');
  });

  it('answers 404 for a validly signed link to a missing object', async () => {
    const response = await get(await link('tenant-a/2026/01/02/task-1/9.png', nowSeconds()));
    expect(response.status).toBe(404);
    expect(((await response.json()) as ErrorBody).error.type).toBe('not_found_error');
  });
});
