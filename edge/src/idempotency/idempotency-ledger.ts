/** How long a finished request's response is replayed for its Idempotency-Key: 24 hours. */
export const IDEMPOTENCY_TTL_MS = 24 * 3_600_000;
/**
 * How long a request may hold its key while running. After this a retry takes the key over (the
 * first request is presumed crashed); generation requests end well before it.
 */
export const IDEMPOTENCY_RUNNING_MS = 15 * 60_000;
/** Expired entries removed per call (bounded work per request; the rest go on later calls). */
export const IDEMPOTENCY_SWEEP_LIMIT = 20;

const RECORD_PREFIX = 'idem:';
const EXPIRY_PREFIX = 'idem-exp:';

/** The first response of a request, as kept for replay. The body bytes live in R2 under `body_key`. */
export interface StoredResponse {
  status: number;
  /** Response headers to replay (lower-case names; repeated headers already joined by Headers). */
  headers: Record<string, string>;
  /** R2 object key of the body. */
  body_key: string;
}

/** One Idempotency-Key's entry. */
interface LedgerRecord {
  /** Hash of the request (method, path, canonical body) that first used the key. */
  fingerprint: string;
  /** Token of the request that currently owns the key (running) or produced the response. */
  attempt: string;
  state: 'running' | 'done';
  /** While running: when another request may take the key over (unix ms). */
  running_until_ms: number;
  /** When the entry (and its replay) expires (unix ms). */
  expires_ms: number;
  response?: StoredResponse;
}

/** The answer of {@link IdempotencyLedger.begin}. */
export type IdempotencyBegin =
  /** First use (or the previous holder crashed/failed): run the request, then complete or abandon with `attempt`. */
  | { outcome: 'proceed'; attempt: string; expired_body_keys: string[] }
  /** The same request finished before: answer with its response. */
  | { outcome: 'replay'; response: StoredResponse; expired_body_keys: string[] }
  /** The same request is still running elsewhere: retry after `retry_after_seconds`. */
  | { outcome: 'in_progress'; retry_after_seconds: number; expired_body_keys: string[] }
  /** The key was used for a different request (method, path or body). */
  | { outcome: 'mismatch'; expired_body_keys: string[] };

/** The synchronous storage the ledger runs on (a SQLite-backed Durable Object's `ctx.storage.kv`). */
export type LedgerStorage = Pick<SyncKvStorage, 'get' | 'put' | 'delete' | 'list'>;

/**
 * The Idempotency-Key ledger of ONE API key (issue 6 part 9): which keys are running or done, the
 * request fingerprint each was first used with, and where the first response is kept.
 *
 * Every method is synchronous on the Durable Object's synchronous storage (no await between read
 * and write), and a Durable Object runs one call at a time, so two concurrent requests with the
 * same key can never both get `proceed`: the job behind a key runs at most once per 24 h.
 *
 * Entries expire IDEMPOTENCY_TTL_MS after they were created; an expiry index
 * (`idem-exp:<ms>:<key>`) lets each call remove a few expired entries without scanning, and hands
 * their R2 body keys back to the caller to delete.
 */
export class IdempotencyLedger {
  constructor(private readonly storage: LedgerStorage) {}

  /**
   * Claim `key` for a request with `fingerprint`, or say why not.
   * @param key the Idempotency-Key as hashed by the caller (any string; stored as given).
   * @param nowMs unix milliseconds.
   */
  begin(key: string, fingerprint: string, nowMs: number): IdempotencyBegin {
    const expired_body_keys = this.sweep(nowMs);
    const record = this.storage.get<LedgerRecord>(RECORD_PREFIX + key);
    if (record && record.expires_ms > nowMs) {
      if (record.fingerprint !== fingerprint) return { outcome: 'mismatch', expired_body_keys };
      if (record.state === 'done' && record.response) return { outcome: 'replay', response: record.response, expired_body_keys };
      if (record.state === 'running' && record.running_until_ms > nowMs) {
        // Short: a generation usually ends within seconds, and the client should not hammer us either.
        return { outcome: 'in_progress', retry_after_seconds: 1, expired_body_keys };
      }
      // Running past its lease: the holder crashed. Take over, keeping the entry's expiry.
      const attempt = crypto.randomUUID();
      this.storage.put(RECORD_PREFIX + key, { ...record, attempt, running_until_ms: nowMs + IDEMPOTENCY_RUNNING_MS } satisfies LedgerRecord);
      return { outcome: 'proceed', attempt, expired_body_keys };
    }
    if (record) this.remove(key, record, expired_body_keys);
    const attempt = crypto.randomUUID();
    const fresh: LedgerRecord = {
      fingerprint,
      attempt,
      state: 'running',
      running_until_ms: nowMs + IDEMPOTENCY_RUNNING_MS,
      expires_ms: nowMs + IDEMPOTENCY_TTL_MS,
    };
    this.storage.put(RECORD_PREFIX + key, fresh);
    this.storage.put(expiryKey(fresh.expires_ms, key), key);
    return { outcome: 'proceed', attempt, expired_body_keys };
  }

  /**
   * Record the response of the request holding `attempt`. Ignored (returns false) when the key
   * was taken over or expired meanwhile; the caller then deletes its R2 body.
   */
  complete(key: string, attempt: string, response: StoredResponse): boolean {
    const record = this.storage.get<LedgerRecord>(RECORD_PREFIX + key);
    if (!record || record.attempt !== attempt || record.state !== 'running') return false;
    this.storage.put(RECORD_PREFIX + key, { ...record, state: 'done', response } satisfies LedgerRecord);
    return true;
  }

  /**
   * Release `key` without a response (the request failed in a way worth retrying: 5xx, 429, …),
   * so the next request with it runs again. Ignored when `attempt` no longer holds the key.
   */
  abandon(key: string, attempt: string): void {
    const record = this.storage.get<LedgerRecord>(RECORD_PREFIX + key);
    if (!record || record.attempt !== attempt) return;
    this.remove(key, record, []);
  }

  /**
   * Forget a finished entry whose stored body has gone missing, so the next request runs again.
   * @returns whether an entry was removed.
   */
  forget(key: string, bodyKey: string): boolean {
    const record = this.storage.get<LedgerRecord>(RECORD_PREFIX + key);
    if (!record || record.response?.body_key !== bodyKey) return false;
    this.remove(key, record, []);
    return true;
  }

  private remove(key: string, record: LedgerRecord, bodyKeys: string[]): void {
    this.storage.delete(RECORD_PREFIX + key);
    this.storage.delete(expiryKey(record.expires_ms, key));
    if (record.response) bodyKeys.push(record.response.body_key);
  }

  /** Remove up to IDEMPOTENCY_SWEEP_LIMIT expired entries; returns their R2 body keys. */
  private sweep(nowMs: number): string[] {
    const bodyKeys: string[] = [];
    const due: [string, string][] = [];
    for (const [indexKey, key] of this.storage.list<string>({ prefix: EXPIRY_PREFIX, limit: IDEMPOTENCY_SWEEP_LIMIT })) {
      if (expiryOf(indexKey) > nowMs) break; // sorted by expiry: the rest are later
      due.push([indexKey, key]);
    }
    for (const [indexKey, key] of due) {
      this.storage.delete(indexKey);
      const record = this.storage.get<LedgerRecord>(RECORD_PREFIX + key);
      if (record && record.expires_ms <= nowMs) {
        this.storage.delete(RECORD_PREFIX + key);
        if (record.response) bodyKeys.push(record.response.body_key);
      }
    }
    return bodyKeys;
  }
}

/** Index key sorting by expiry: the time zero-padded to 15 digits (unix ms until year 33658). */
function expiryKey(expiresMs: number, key: string): string {
  return `${EXPIRY_PREFIX}${String(expiresMs).padStart(15, '0')}:${key}`;
}

function expiryOf(indexKey: string): number {
  return Number(indexKey.slice(EXPIRY_PREFIX.length, EXPIRY_PREFIX.length + 15));
}
