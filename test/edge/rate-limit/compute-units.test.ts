import { env } from 'cloudflare:workers';
import { runInDurableObject } from 'cloudflare:test';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { newApiKeyRecord, type ApiKeyLimits } from '@image-api/shared/api/api-key';
import type { ErrorBody } from '@image-api/shared/errors';
import type { AppEnv } from '../../../edge/src/env';
import { errorHandler } from '../../../edge/src/middleware/error-handler';
import { acquireGenerationSlot, type GenerationCost } from '../../../edge/src/middleware/rate-limit';
import { computeUnitsOf, pixelSteps, type RateLimiter } from '../../../edge/src/rate-limit/rate-limiter';

const T0 = Date.parse('2026-03-10T12:00:30Z'); // 30 s into a minute window

function limiter(name: string) {
  return env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(name));
}

let keyCounter = 0;

/**
 * A tiny app standing in for a generation route: it takes a slot for `n` images of the cost given
 * in the query, "runs" (or fails, with ?fail=1) and releases the slot, as the real routes do.
 */
async function routeFor(limits: ApiKeyLimits) {
  const record = await newApiKeyRecord(`sk-cu-${++keyCounter}-${crypto.randomUUID()}`, { name: `cu-${keyCounter}`, limits });
  const app = new Hono<AppEnv>();
  app.onError(errorHandler());
  app.post('/generate', async (c) => {
    c.set('apiKey', record);
    const q = c.req.query();
    const cost: GenerationCost | undefined = q.steps ? { steps: Number(q.steps), width: Number(q.width), height: Number(q.height) } : undefined;
    const slot = await acquireGenerationSlot(c, Number(q.n ?? 1), cost);
    await slot?.release(q.fail !== '1');
    if (q.fail === '1') return c.json({ error: { code: 'backend_unavailable', message: 'failed', param: null, type: 'server_error' } }, 502);
    return c.json({ ok: true });
  });
  return (query: string) => app.request(`/generate?${query}`, { method: 'POST' }, env);
}

describe('compute units (steps × megapixels × images)', () => {
  it('pixelSteps is the exact integer product; compute units divide by 10^6', () => {
    expect(pixelSteps({ steps: 50, width: 1024, height: 1024, images: 1 })).toBe(52_428_800);
    expect(computeUnitsOf(52_428_800)).toBe(52.429);
    expect(computeUnitsOf(pixelSteps({ steps: 4, width: 256, height: 256, images: 1 }))).toBe(0.262);
    expect(pixelSteps({ steps: 20, width: 512, height: 768, images: 4 })).toBe(20 * 512 * 768 * 4);
    expect(() => pixelSteps({ steps: 0, width: 512, height: 512, images: 1 })).toThrow(RangeError);
  });

  it('the Durable Object admits requests until the minute budget is used, exactly, and a new window admits again', async () => {
    await runInDurableObject(limiter('cu-window'), (instance: RateLimiter) => {
      const limits = { compute_units_per_minute: 1 };
      // 256×256×5 steps = 327 680 pixel-steps; three fit in 1 000 000, a fourth does not.
      const cost = pixelSteps({ steps: 5, width: 256, height: 256, images: 1 });
      for (let i = 0; i < 3; i++) expect(instance.acquire({ limits, images: 1, pixel_steps: cost, nowMs: T0 }).allowed).toBe(true);
      const refused = instance.acquire({ limits, images: 1, pixel_steps: cost, nowMs: T0 + 10_000 });
      expect(refused).toMatchObject({
        allowed: false,
        code: 'compute_unit_limit_exceeded',
        retry_after_seconds: 20,
        compute: { limit: 1, remaining: 0.016, reset_seconds: 20 },
      });
      // A request that still fits (16 000 pixel-steps = 0.016 units) is admitted.
      expect(instance.acquire({ limits, images: 1, pixel_steps: 16_960, nowMs: T0 + 10_000 }).allowed).toBe(true);
      expect(instance.acquire({ limits, images: 1, pixel_steps: 1, nowMs: T0 + 10_000 }).allowed).toBe(false);
      expect(instance.acquire({ limits, images: 1, pixel_steps: cost, nowMs: T0 + 30_000 }).allowed).toBe(true);
    });
  });

  it('a failed job gives its compute units back (same window); a missing cost is refused', async () => {
    await runInDurableObject(limiter('cu-refund'), (instance: RateLimiter) => {
      const limits = { compute_units_per_minute: 2 };
      const cost = 1_500_000;
      const first = instance.acquire({ limits, images: 1, pixel_steps: cost, nowMs: T0 });
      if (!first.allowed) throw new Error('refused');
      expect(first.compute).toMatchObject({ limit: 2, remaining: 0.5 });
      expect(instance.acquire({ limits, images: 1, pixel_steps: cost, nowMs: T0 }).allowed).toBe(false);
      instance.release(first.lease_id, { refund_images: true, nowMs: T0 });
      expect(instance.acquire({ limits, images: 1, pixel_steps: cost, nowMs: T0 }).allowed).toBe(true);
      expect(instance.acquire({ limits, images: 1, nowMs: T0 })).toMatchObject({ allowed: false, code: 'compute_cost_missing' });
    });
  });

  it('50 simultaneous requests against a budget of exactly 10 of them admit exactly 10; the rest get 429 with the headers', async () => {
    // 512×512×20 steps = 5 242 880 pixel-steps = 5.24288 units; 10 of them = 52.4288 units.
    const generate = await routeFor({ compute_units_per_minute: 52.4288 });
    const responses = await Promise.all(Array.from({ length: 50 }, () => generate('steps=20&width=512&height=512')));
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(40);

    const ok = responses.find((r) => r.status === 200)!;
    expect(ok.headers.get('x-ratelimit-limit-compute-units')).toBe('52.4288');
    expect(Number(ok.headers.get('x-ratelimit-remaining-compute-units'))).toBeLessThan(52.4288);
    const refused = responses.find((r) => r.status === 429)!;
    const body = (await refused.json()) as ErrorBody;
    expect(body.error).toMatchObject({ code: 'compute_unit_limit_exceeded', type: 'rate_limit_error', param: null });
    expect(refused.headers.get('x-ratelimit-limit')).toBe('52.4288');
    expect(refused.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(refused.headers.get('x-ratelimit-remaining-compute-units')).toBe('0');
    const reset = Number(refused.headers.get('x-ratelimit-reset'));
    expect(reset).toBeGreaterThanOrEqual(1);
    expect(reset).toBeLessThanOrEqual(60);
    expect(refused.headers.get('retry-after')).toBe(String(reset));
  });

  it('cost scales with n, steps and size: a cheap request still fits when an expensive one does not', async () => {
    const generate = await routeFor({ compute_units_per_minute: 10 });
    expect((await generate('steps=20&width=512&height=512&n=1')).status).toBe(200); // 5.243 used
    expect((await generate('steps=20&width=512&height=512&n=1')).status).toBe(429); // would be 10.486
    expect((await generate('steps=4&width=256&height=256&n=4')).status).toBe(200); // +1.049 = 6.292
    expect((await generate('steps=4&width=256&height=256&n=16')).status).toBe(429); // +4.194 > 10
  });

  it('a failed request refunds its units; a request bigger than the whole budget is a 400; no cost is a 500', async () => {
    const generate = await routeFor({ compute_units_per_minute: 6 });
    expect((await generate('steps=20&width=512&height=512&fail=1')).status).toBe(502);
    expect((await generate('steps=20&width=512&height=512')).status).toBe(200); // the failed one was refunded

    const tooBig = await generate('steps=50&width=1024&height=1024');
    expect(tooBig.status).toBe(400);
    expect(((await tooBig.json()) as ErrorBody).error.code).toBe('compute_units_exceed_limit');

    const noCost = await generate('');
    expect(noCost.status).toBe(500);
    expect(((await noCost.json()) as ErrorBody).error.code).toBe('compute_cost_missing');
  });

  it('keys without a compute budget are not charged and get no compute headers', async () => {
    const generate = await routeFor({ rpm: 100 });
    const response = await generate('steps=200&width=4096&height=4096&n=10');
    expect(response.status).toBe(200);
    expect(response.headers.get('x-ratelimit-limit-compute-units')).toBeNull();
    expect(response.headers.get('x-ratelimit-limit')).toBe('100');
  });
});
