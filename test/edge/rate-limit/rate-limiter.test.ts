import { env } from 'cloudflare:workers';
import { abortAllDurableObjects, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { LEASE_TTL_MS, type RateLimiter } from '../../../edge/src/rate-limit/rate-limiter';

function limiter(name: string) {
  return env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(name));
}

const T0 = Date.parse('2026-03-10T12:00:30Z'); // 30 s into a minute window

describe('RateLimiter Durable Object', () => {
  it('requests per minute: a new window admits again; Reset counts down to the window end', async () => {
    await runInDurableObject(limiter('rpm-window'), (instance: RateLimiter) => {
      const first = instance.acquire({ limits: { rpm: 2 }, images: 1, nowMs: T0 });
      expect(first).toMatchObject({ allowed: true, rpm: { limit: 2, remaining: 1, reset_seconds: 30 } });
      expect(instance.acquire({ limits: { rpm: 2 }, images: 1, nowMs: T0 + 1000 }).allowed).toBe(true);
      const third = instance.acquire({ limits: { rpm: 2 }, images: 1, nowMs: T0 + 20_000 });
      expect(third).toMatchObject({ allowed: false, code: 'rate_limit_exceeded', retry_after_seconds: 10 });
      expect(instance.acquire({ limits: { rpm: 2 }, images: 1, nowMs: T0 + 30_000 }).allowed).toBe(true);
    });
  });

  it('concurrency: release frees a slot; a lease never released expires after LEASE_TTL_MS', async () => {
    await runInDurableObject(limiter('concurrency'), (instance: RateLimiter) => {
      const limits = { concurrency: 1 };
      const lease = instance.acquire({ limits, images: 1, nowMs: T0 });
      if (!lease.allowed) throw new Error('first acquire refused');
      expect(instance.acquire({ limits, images: 1, nowMs: T0 }).allowed).toBe(false);
      instance.release(lease.lease_id, { refund_images: false, nowMs: T0 });
      expect(instance.acquire({ limits, images: 1, nowMs: T0 }).allowed).toBe(true); // never released
      expect(instance.acquire({ limits, images: 1, nowMs: T0 + LEASE_TTL_MS - 1 }).allowed).toBe(false);
      expect(instance.acquire({ limits, images: 1, nowMs: T0 + LEASE_TTL_MS }).allowed).toBe(true);
    });
  });

  it('images per day reset at UTC midnight, with Retry-After up to then', async () => {
    await runInDurableObject(limiter('daily'), (instance: RateLimiter) => {
      const limits = { images_per_day: 4 };
      expect(instance.acquire({ limits, images: 4, nowMs: T0 }).allowed).toBe(true);
      const refused = instance.acquire({ limits, images: 1, nowMs: T0 });
      const midnight = Date.parse('2026-03-11T00:00:00Z');
      expect(refused).toMatchObject({ allowed: false, code: 'daily_image_limit_exceeded', retry_after_seconds: (midnight - T0) / 1000 });
      expect(instance.acquire({ limits, images: 4, nowMs: midnight }).allowed).toBe(true);
    });
  });

  it('state survives eviction of the instance (it is in durable storage)', async () => {
    const stub = limiter('durable');
    await runInDurableObject(stub, (instance: RateLimiter) => {
      expect(instance.acquire({ limits: { images_per_day: 2 }, images: 2, nowMs: T0 }).allowed).toBe(true);
    });
    await abortAllDurableObjects(); // drops every instance's memory; storage stays
    // The aborted stub is broken, so a fresh one reaches the new instance over the same storage.
    await runInDurableObject(limiter('durable'), (instance: RateLimiter) => {
      expect(instance.acquire({ limits: { images_per_day: 2 }, images: 1, nowMs: T0 }).allowed).toBe(false);
    });
  });

  it('async tasks: admitted without a running slot (never refused for concurrency), running only via startRun within the limit', async () => {
    await runInDurableObject(limiter('async-runs'), (instance: RateLimiter) => {
      const limits = { concurrency: 1, images_per_day: 3 };
      const sync = instance.acquire({ limits, images: 1, lease_id: 'sync', nowMs: T0 });
      expect(sync).toMatchObject({ allowed: true, lease_id: 'sync' });
      // Two async submits while the sync job holds the only slot: both admitted (and charged).
      expect(instance.acquire({ limits, images: 1, lease_id: 'task-a', hold_concurrency: false, nowMs: T0 }).allowed).toBe(true);
      expect(instance.acquire({ limits, images: 1, lease_id: 'task-b', hold_concurrency: false, nowMs: T0 }).allowed).toBe(true);
      expect(instance.acquire({ limits, images: 1, hold_concurrency: false, nowMs: T0 })).toMatchObject({ allowed: false, code: 'daily_image_limit_exceeded' });
      expect(instance.startRun('task-a', { nowMs: T0 })).toMatchObject({ allowed: false, code: 'concurrency_limit_exceeded', retry_after_seconds: 1 });
      instance.release('sync', { refund_images: false, nowMs: T0 });
      expect(instance.startRun('task-a', { nowMs: T0 })).toEqual({ allowed: true, started: true });
      expect(instance.startRun('task-a', { nowMs: T0 })).toEqual({ allowed: true, started: false }); // a redelivery
      expect(instance.startRun('task-b', { nowMs: T0 }).allowed).toBe(false);
      // A running async task counts for sync requests too.
      expect(instance.acquire({ limits: { concurrency: 1 }, images: 1, nowMs: T0 })).toMatchObject({ allowed: false, code: 'concurrency_limit_exceeded' });
      instance.stopRun('task-a', { nowMs: T0 }); // re-queued: the slot is free, the charge kept
      expect(instance.startRun('task-b', { nowMs: T0 })).toEqual({ allowed: true, started: true });
      // task-b succeeds (kept), task-a fails (refunded): one image of the day is free again.
      instance.release('task-b', { refund_images: false, nowMs: T0 });
      instance.release('task-a', { refund_images: true, nowMs: T0 });
      expect(instance.acquire({ limits, images: 1, nowMs: T0 }).allowed).toBe(true);
      expect(instance.startRun('unknown-lease', { nowMs: T0 })).toEqual({ allowed: true, started: false });
    });
  });
});
