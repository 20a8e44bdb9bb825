import { env } from 'cloudflare:workers';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { newApiKeyRecord } from '@image-api/shared/api/api-key';
import type { ErrorBody } from '@image-api/shared/errors';
import { buildApp } from '../../../edge/src/app';
import { DEFAULT_LINK_TTL_MAX_SECONDS, MIN_LINK_TTL_SECONDS, readEdgeConfig, resolveLinkTtl } from '../../../edge/src/lib/edge-config';
import { signFileLink } from '../../../edge/src/storage/signed-links';
import { fakeBackends } from '../backends/fake-backends';

const NOW_MS = Date.parse('2026-03-10T12:00:00Z');
const NOW_S = NOW_MS / 1000;

describe('resolveLinkTtl', () => {
  const config = { linkTtlSeconds: 3600, linkTtlMaxSeconds: 7 * 86_400 };

  it('defaults to LINK_TTL_SECONDS and accepts integers (or digit strings) within [60, max]', () => {
    expect(resolveLinkTtl(undefined, config)).toBe(3600);
    expect(resolveLinkTtl('', config)).toBe(3600);
    expect(resolveLinkTtl(MIN_LINK_TTL_SECONDS, config)).toBe(60);
    expect(resolveLinkTtl('86400', config)).toBe(86_400);
    expect(resolveLinkTtl(7 * 86_400, config)).toBe(604_800);
  });

  it('refuses values out of range or not integers with a 400 naming link_ttl_seconds', () => {
    for (const bad of [59, 0, -5, 604_801, 1.5, '12abc', 'soon', true, [3600]]) {
      expect(() => resolveLinkTtl(bad, config), String(bad)).toThrowError(expect.objectContaining({ status: 400, param: 'link_ttl_seconds' }));
    }
  });

  it('reads LINK_TTL_MAX_SECONDS (default 7 days) and refuses a maximum below the default lifetime', () => {
    expect(readEdgeConfig(env).linkTtlMaxSeconds).toBe(DEFAULT_LINK_TTL_MAX_SECONDS);
    expect(readEdgeConfig({ ...env, LINK_TTL_MAX_SECONDS: '7200' }).linkTtlMaxSeconds).toBe(7200);
    expect(() => readEdgeConfig({ ...env, LINK_TTL_MAX_SECONDS: '600' })).toThrowError(expect.objectContaining({ code: 'server_misconfigured' }));
  });

  it('GPU_BACKENDS lists several backends; GPU_SERVICE_URL is the default', () => {
    expect(readEdgeConfig(env).gpuBackendUrls).toEqual([env.GPU_SERVICE_URL]);
    const config = readEdgeConfig({ ...env, GPU_BACKENDS: 'http://a.test:8788/, http://b.test:8788 http://a.test:8788' });
    expect(config.gpuBackendUrls).toEqual(['http://a.test:8788', 'http://b.test:8788']);
    expect(config.gpuServiceUrl).toBe('http://a.test:8788');
    expect(() => readEdgeConfig({ ...env, GPU_BACKENDS: 'ftp://a.test' })).toThrowError(expect.objectContaining({ code: 'server_misconfigured' }));
  });
});

describe('link_ttl_seconds on the URL-returning routes, and the links themselves', () => {
  let key: string;
  beforeEach(async () => {
    const fake = fakeBackends([env.GPU_SERVICE_URL], env.GPU_SERVICE_TOKEN);
    vi.spyOn(globalThis, 'fetch').mockImplementation(fake.fetch);
    key = `sk-ttl-${crypto.randomUUID()}`;
    const record = await newApiKeyRecord(key, { name: 'ttl', tenant: 'tenant-ttl' });
    await env.API_KEYS.put(record.key_hash, JSON.stringify(record));
  });
  afterEach(() => vi.restoreAllMocks());

  function appAt(nowMs: number) {
    return buildApp({ now: () => nowMs });
  }

  async function generate(body: Record<string, unknown>, query = '') {
    return appAt(NOW_MS).request(
      `https://edge.test/v1/images/generations${query}`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ prompt: 'a red apple', size: '64x64', seed: 3, ...body }),
      },
      env,
    );
  }

  async function firstUrl(response: Response): Promise<URL> {
    expect(response.status).toBe(200);
    const body = (await response.json()) as { data: { url: string }[] };
    return new URL(body.data[0].url);
  }

  it('without the field links live LINK_TTL_SECONDS; with it, exactly what was asked (body or query)', async () => {
    expect(Number((await firstUrl(await generate({}))).searchParams.get('exp'))).toBe(NOW_S + 3600);
    expect(Number((await firstUrl(await generate({ link_ttl_seconds: 120 }))).searchParams.get('exp'))).toBe(NOW_S + 120);
    expect(Number((await firstUrl(await generate({}, '?link_ttl_seconds=86400'))).searchParams.get('exp'))).toBe(NOW_S + 86_400);
  });

  it('a lifetime outside [60 s, LINK_TTL_MAX_SECONDS] is a 400 naming link_ttl_seconds, before any GPU work', async () => {
    for (const ttl of [10, 7 * 86_400 + 1, 'tomorrow']) {
      const response = await generate({ link_ttl_seconds: ttl });
      expect(response.status).toBe(400);
      expect(((await response.json()) as ErrorBody).error).toMatchObject({ param: 'link_ttl_seconds', type: 'invalid_request_error' });
    }
    expect(vi.mocked(globalThis.fetch).mock.calls.some(([input]) => String(input instanceof Request ? input.url : input).endsWith('/v1/jobs'))).toBe(false);
  });

  it('a link works until its own expiry and is refused (403 link_expired) after it', async () => {
    const url = await firstUrl(await generate({ link_ttl_seconds: 120 }));
    const path = url.pathname + url.search;
    expect((await appAt(NOW_MS + 119_000).request(`https://edge.test${path}`, {}, env)).status).toBe(200);
    const late = await appAt(NOW_MS + 120_000).request(`https://edge.test${path}`, {}, env);
    expect(late.status).toBe(403);
    expect(((await late.json()) as ErrorBody).error.code).toBe('link_expired');
  });

  it('a tampered link (expiry pushed later) and another tenant\'s path under a valid signature are refused', async () => {
    const url = await firstUrl(await generate({ link_ttl_seconds: 120 }));
    const later = new URL(url);
    later.searchParams.set('exp', String(Number(url.searchParams.get('exp')) + 86_400));
    const tampered = await appAt(NOW_MS).request(`https://edge.test${later.pathname}${later.search}`, {}, env);
    expect(tampered.status).toBe(403);
    expect(((await tampered.json()) as ErrorBody).error.code).toBe('invalid_signature');

    // The tenant is the first segment of the R2 key, and the signature covers the whole key.
    expect(url.pathname.startsWith('/v1/files/tenant-ttl/')).toBe(true);
    const otherTenant = url.pathname.replace('/v1/files/tenant-ttl/', '/v1/files/tenant-other/');
    await env.IMAGES.put(decodeURIComponent(otherTenant.slice('/v1/files/'.length)), new Uint8Array([1, 2, 3]));
    const stolen = await appAt(NOW_MS).request(`https://edge.test${otherTenant}${url.search}`, {}, env);
    expect(stolen.status).toBe(403);

    // A link legitimately signed for the other tenant's object works: the refusal above is the binding.
    const own = await signFileLink({
      origin: 'https://edge.test',
      key: decodeURIComponent(otherTenant.slice('/v1/files/'.length)),
      secret: env.LINK_SIGNING_SECRET,
      ttlSeconds: 60,
      nowSeconds: NOW_S,
    });
    const ownUrl = new URL(own.url);
    expect((await appAt(NOW_MS).request(`https://edge.test${ownUrl.pathname}${ownUrl.search}`, {}, env)).status).toBe(200);
  });
});
