import { env, exports } from 'cloudflare:workers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newApiKeyRecord, type ApiKeyLimits } from '@image-api/shared/api/api-key';
import type { ErrorBody } from '@image-api/shared/errors';
import { installFakeGpuService, type FakeGpuService } from '../helpers/fake-gpu-service';

let keyCounter = 0;

/** A fresh key (own Durable Object) with the given limits. */
async function keyWithLimits(limits: ApiKeyLimits): Promise<string> {
  const key = `sk-test-limits-${++keyCounter}-${crypto.randomUUID()}`;
  const record = await newApiKeyRecord(key, { name: `limits-${keyCounter}`, tenant: 'tenant-l', limits });
  await env.API_KEYS.put(record.key_hash, JSON.stringify(record));
  return key;
}

function generate(key: string, n = 1): Promise<Response> {
  return exports.default.fetch('https://edge.test/v1/images/generations', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ prompt: 'a red apple', n, size: '64x64', response_format: 'b64_json' }),
  });
}

async function waitUntil(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('rate limits per key (RateLimiter Durable Object)', () => {
  let gpu: FakeGpuService;
  beforeEach(() => {
    gpu = installFakeGpuService(env.GPU_SERVICE_URL, env.GPU_SERVICE_TOKEN);
  });
  afterEach(() => gpu.restore());

  it('50 simultaneous requests against rpm 10 admit exactly 10; the rest get 429 with the headers', async () => {
    const key = await keyWithLimits({ rpm: 10 });
    const responses = await Promise.all(Array.from({ length: 50 }, () => generate(key)));
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(40);
    expect(gpu.jobs).toHaveLength(10);

    const ok = responses.find((r) => r.status === 200)!;
    expect(ok.headers.get('x-ratelimit-limit')).toBe('10');
    expect(Number(ok.headers.get('x-ratelimit-remaining'))).toBeLessThan(10);
    const refused = responses.find((r) => r.status === 429)!;
    expect(refused.headers.get('x-ratelimit-limit')).toBe('10');
    expect(refused.headers.get('x-ratelimit-remaining')).toBe('0');
    const reset = Number(refused.headers.get('x-ratelimit-reset'));
    expect(reset).toBeGreaterThanOrEqual(1);
    expect(reset).toBeLessThanOrEqual(60);
    expect(refused.headers.get('retry-after')).toBe(String(reset));
    const body = (await refused.json()) as ErrorBody;
    expect(body.error).toMatchObject({ code: 'rate_limit_exceeded', type: 'rate_limit_error', param: null });
  });

  it('50 simultaneous requests against concurrency 10 admit exactly 10 while they run', async () => {
    const key = await keyWithLimits({ concurrency: 10 });
    const release = gpu.hold();
    const pending = Array.from({ length: 50 }, () => generate(key));
    // The 40 refusals answer at once; the 10 admitted ones wait in the (held) GPU service.
    await waitUntil(() => gpu.inFlight === 10);
    release();
    const responses = await Promise.all(pending);
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(40);
    const refused = responses.find((r) => r.status === 429)!;
    expect(((await refused.json()) as ErrorBody).error.code).toBe('concurrency_limit_exceeded');
    expect(refused.headers.get('retry-after')).toBe('1');

    // Finished jobs free their slots.
    expect((await generate(key)).status).toBe(200);
  });

  it('images per day count n, and a failed job gives its images back', async () => {
    const key = await keyWithLimits({ images_per_day: 5 });
    expect((await generate(key, 3)).status).toBe(200);
    gpu.behaviour = { kind: 'connection_refused' };
    expect((await generate(key, 2)).status).toBe(502); // refunded: produced nothing
    gpu.behaviour = { kind: 'ok' };
    expect((await generate(key, 2)).status).toBe(200); // 5 of 5 used
    const refused = await generate(key, 1);
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as ErrorBody).error.code).toBe('daily_image_limit_exceeded');
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(86_400);
  });

  it('keys do not share limits, and a key without limits is never throttled', async () => {
    const a = await keyWithLimits({ rpm: 1 });
    const b = await keyWithLimits({ rpm: 1 });
    const unlimited = await keyWithLimits({});
    expect((await generate(a)).status).toBe(200);
    expect((await generate(a)).status).toBe(429);
    expect((await generate(b)).status).toBe(200);
    const responses = await Promise.all(Array.from({ length: 5 }, () => generate(unlimited)));
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(responses[0].headers.get('x-ratelimit-limit')).toBeNull();
  });
});
