/**
 * The in-isolate API-key record cache (edge/src/middleware/api-key-cache.ts) as a client sees it: a key keeps
 * working for at most API_KEY_CACHE_SECONDS after it is revoked in KV, then 401; with 0 a revocation is
 * immediate; a key created a moment ago works at once (unknown keys are never cached).
 */
import { env } from 'cloudflare:workers';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { apiKeyHash } from '@image-api/shared/api/api-key';
import type { AppEnv } from '../../../edge/src/env';
import { ApiKeyRecordCache, apiKeyCacheMs, DEFAULT_API_KEY_CACHE_SECONDS } from '../../../edge/src/middleware/api-key-cache';
import { auth } from '../../../edge/src/middleware/auth';
import { errorHandler } from '../../../edge/src/middleware/error-handler';
import { seedApiKey } from '../helpers/api-keys';

/** An app with only the auth middleware and a route naming the key, on a clock the test moves. */
function appWithClock() {
  const clock = { ms: Date.parse('2026-12-07T12:00:00Z') };
  const app = new Hono<AppEnv>();
  app.onError(errorHandler());
  app.use('*', auth({ cache: new ApiKeyRecordCache(), now: () => clock.ms }));
  app.get('/whoami', (c) => c.json({ name: c.get('apiKey').name, rpm: c.get('apiKey').limits.rpm ?? null }));
  const call = async (key: string, vars: Record<string, string> = {}) => {
    const response = await app.request('/whoami', { headers: { authorization: `Bearer ${key}` } }, { ...env, ...vars });
    return { status: response.status, body: (await response.json()) as { name?: string; rpm?: number | null; error?: { code: string; message: string } } };
  };
  return { clock, call };
}

async function revoke(key: string): Promise<void> {
  const digest = await apiKeyHash(key);
  const record = JSON.parse((await env.API_KEYS.get(digest))!) as Record<string, unknown>;
  await env.API_KEYS.put(digest, JSON.stringify({ ...record, revoked: true, revoked_at: new Date().toISOString() }));
}

describe('API-key record cache', () => {
  it(`a revoked key is refused at most ${DEFAULT_API_KEY_CACHE_SECONDS} s later (the default), then with 401 "revoked"`, async () => {
    const { clock, call } = appWithClock();
    await seedApiKey(env.API_KEYS, { key: 'sk-cache-revoked', name: 'soon-revoked' });
    expect(await call('sk-cache-revoked')).toEqual({ status: 200, body: { name: 'soon-revoked', rpm: null } });
    await revoke('sk-cache-revoked');
    clock.ms += DEFAULT_API_KEY_CACHE_SECONDS * 1000 - 1;
    expect((await call('sk-cache-revoked')).status).toBe(200);
    clock.ms += 1;
    const refused = await call('sk-cache-revoked');
    expect(refused.status).toBe(401);
    expect(refused.body.error?.code).toBe('invalid_api_key');
    expect(refused.body.error?.message).toMatch(/revoked/);
  });

  it('a limit change is seen once the record expires from the cache', async () => {
    const { clock, call } = appWithClock();
    await seedApiKey(env.API_KEYS, { key: 'sk-cache-limits', name: 'limits', limits: { rpm: 5 } });
    expect((await call('sk-cache-limits')).body.rpm).toBe(5);
    await seedApiKey(env.API_KEYS, { key: 'sk-cache-limits', name: 'limits', limits: { rpm: 50 } });
    expect((await call('sk-cache-limits')).body.rpm).toBe(5);
    clock.ms += DEFAULT_API_KEY_CACHE_SECONDS * 1000;
    expect((await call('sk-cache-limits')).body.rpm).toBe(50);
  });

  it('API_KEY_CACHE_SECONDS = 0 reads KV on every request: a revocation is refused at once', async () => {
    const { call } = appWithClock();
    const off = { API_KEY_CACHE_SECONDS: '0' };
    await seedApiKey(env.API_KEYS, { key: 'sk-cache-off', name: 'uncached' });
    expect((await call('sk-cache-off', off)).status).toBe(200);
    await revoke('sk-cache-off');
    expect((await call('sk-cache-off', off)).status).toBe(401);
  });

  it('an unknown key is not cached: created a moment after a refused request, it works at once', async () => {
    const { call } = appWithClock();
    expect((await call('sk-cache-new')).status).toBe(401);
    await seedApiKey(env.API_KEYS, { key: 'sk-cache-new', name: 'brand-new' });
    expect(await call('sk-cache-new')).toEqual({ status: 200, body: { name: 'brand-new', rpm: null } });
  });

  it('API_KEY_CACHE_SECONDS outside 0..60 or not an integer is a 500 naming the var', async () => {
    const { call } = appWithClock();
    await seedApiKey(env.API_KEYS, { key: 'sk-cache-bad-var', name: 'bad-var' });
    for (const bad of ['61', '-1', '2.5', 'ten']) {
      const response = await call('sk-cache-bad-var', { API_KEY_CACHE_SECONDS: bad });
      expect(response.status, bad).toBe(500);
      expect(response.body.error?.code).toBe('server_misconfigured');
      expect(response.body.error?.message).toContain('API_KEY_CACHE_SECONDS');
    }
    expect(apiKeyCacheMs({ API_KEY_CACHE_SECONDS: '60' })).toBe(60_000);
    expect(apiKeyCacheMs({})).toBe(DEFAULT_API_KEY_CACHE_SECONDS * 1000);
  });

  it('holds at most its capacity, dropping the oldest record', () => {
    const cache = new ApiKeyRecordCache(2);
    const record = (name: string) => ({ name, tenant: 't', key_hash: '0'.repeat(64), scopes: ['*'], limits: {}, created_at: '' });
    cache.set('a', record('a'), 100);
    cache.set('b', record('b'), 100);
    cache.set('c', record('c'), 100);
    expect(cache.size).toBe(2);
    expect(cache.get('a', 0)).toBeUndefined();
    expect(cache.get('b', 0)?.name).toBe('b');
    expect(cache.get('c', 99)?.name).toBe('c');
    expect(cache.get('c', 100)).toBeUndefined();
  });
});
