/**
 * An in-isolate cache of API-key records (KV `API_KEYS`), so a key that sends request after request is not
 * read from KV every time: one KV read per key per `API_KEY_CACHE_SECONDS` in each Worker isolate.
 *
 * Why a short TTL is safe: Workers KV itself is eventually consistent (a write, e.g. `keys revoke`, can take up
 * to 60 s to reach every location), so a revocation or a limit change already takes effect "within a minute";
 * the cache adds at most its TTL (default 10 s) to that. Only records that exist are kept (an unknown key is
 * read again every time, so a key created a moment ago works at once and random keys cannot fill the cache),
 * entries are keyed by the key's SHA-256 digest (never the key), and the cache holds at most
 * {@link MAX_CACHED_KEYS} records, dropping the oldest.
 */
import type { ApiKeyRecord } from '@image-api/shared/api/api-key';
import { misconfigured } from '../lib/api-error';

/** Seconds a key record read from KV is reused in one isolate when API_KEY_CACHE_SECONDS is unset. */
export const DEFAULT_API_KEY_CACHE_SECONDS = 10;
/** Longest API_KEY_CACHE_SECONDS accepted: KV's own propagation bound, so the cache never dominates it. */
export const MAX_API_KEY_CACHE_SECONDS = 60;
/** Most records one isolate keeps (≈ 0.5 KB each). */
export const MAX_CACHED_KEYS = 10_000;

/**
 * The cache lifetime from the Worker var API_KEY_CACHE_SECONDS: an integer in [0, 60]; 0 turns the cache off
 * (every request reads KV). Unset → {@link DEFAULT_API_KEY_CACHE_SECONDS}.
 * @returns milliseconds.
 * @throws ApiError 500 `server_misconfigured` naming the var and the rule.
 */
export function apiKeyCacheMs(env: { API_KEY_CACHE_SECONDS?: string }): number {
  const text = env.API_KEY_CACHE_SECONDS;
  if (text === undefined || text.trim() === '') return DEFAULT_API_KEY_CACHE_SECONDS * 1000;
  const seconds = Number(text);
  if (!/^\d+$/.test(text.trim()) || seconds > MAX_API_KEY_CACHE_SECONDS) {
    throw misconfigured(`API_KEY_CACHE_SECONDS must be an integer from 0 to ${MAX_API_KEY_CACHE_SECONDS}, got "${text}".`);
  }
  return seconds * 1000;
}

/** Key records by SHA-256 hex digest, each with the time (unix ms) it stops being reused. */
export class ApiKeyRecordCache {
  private readonly entries = new Map<string, { record: ApiKeyRecord; expiresAtMs: number }>();

  constructor(private readonly maxEntries: number = MAX_CACHED_KEYS) {}

  /** The record cached for `digest`, or undefined when there is none or it has expired at `nowMs` (then dropped). */
  get(digest: string, nowMs: number): ApiKeyRecord | undefined {
    const entry = this.entries.get(digest);
    if (!entry) return undefined;
    if (entry.expiresAtMs <= nowMs) {
      this.entries.delete(digest);
      return undefined;
    }
    return entry.record;
  }

  /** Keep `record` for `digest` until `expiresAtMs`; the oldest entry goes when the cache is full. */
  set(digest: string, record: ApiKeyRecord, expiresAtMs: number): void {
    this.entries.delete(digest);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(digest, { record, expiresAtMs });
  }

  /** How many records are held (tests). */
  get size(): number {
    return this.entries.size;
  }
}
