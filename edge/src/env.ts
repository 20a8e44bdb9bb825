import type { ApiKeyRecord } from '@image-api/shared/api/api-key';
import type { ServerTiming } from './lib/server-timing';
import type { RateLimiter } from './rate-limit/rate-limiter';

/**
 * Worker bindings declared in wrangler.toml (KV, R2, vars) plus the secrets set with
 * `wrangler secret put` (locally: .dev.vars). Vars arrive as strings.
 */
export interface EdgeBindings {
  /** KV: SHA-256 hex of an API key → ApiKeyRecord JSON. */
  API_KEYS: KVNamespace;
  /** R2: generated images under <tenant>/<yyyy>/<mm>/<dd>/<task>/<i>.<ext>. */
  IMAGES: R2Bucket;
  /** D1: the `tasks` table (edge/migrations/, edge/src/tasks/task-store.ts), one row per generation. */
  DB: D1Database;
  /** Durable Object namespace: one RateLimiter per API key (named by the key hash). */
  RATE_LIMITER: DurableObjectNamespace<RateLimiter>;
  /** Base URL of the GPU service, e.g. "http://127.0.0.1:8788". */
  GPU_SERVICE_URL: string;
  /** Model used when a request names none. */
  DEFAULT_MODEL: string;
  /** Lifetime of signed file links, in seconds (string var). */
  LINK_TTL_SECONDS: string;
  /** Secret: bearer token the GPU service expects. */
  GPU_SERVICE_TOKEN: string;
  /** Secret: HMAC-SHA256 key for /v1/files links. */
  LINK_SIGNING_SECRET: string;
  /** "false" turns the Server-Timing header off (lib/server-timing.ts); default on. */
  SERVER_TIMING?: string;
  /** Seconds a key record read from KV is reused in one isolate, 0–60 (middleware/api-key-cache.ts); default 10. */
  API_KEY_CACHE_SECONDS?: string;
}

/** Per-request values handlers read with `c.get`. */
export interface AppVariables {
  /** The authenticated key's record (set by the auth middleware). */
  apiKey: ApiKeyRecord;
  /** Phase durations of this request, sent as `Server-Timing` (lib/server-timing.ts); absent when an app runs without that middleware. */
  timing?: ServerTiming;
}

/** The one Hono environment type of the edge app. */
export type AppEnv = { Bindings: EdgeBindings; Variables: AppVariables };

declare global {
  // Lets `import { env } from 'cloudflare:workers'` (tests) see our bindings.
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Cloudflare {
    // eslint-disable-next-line @typescript-eslint/no-empty-object-type
    interface Env extends EdgeBindings {}
    // Types `exports.default` (tests, ctx.exports) as the Worker entry and, later, its Durable Objects.
    interface GlobalProps {
      mainModule: typeof import('./index');
      durableNamespaces: 'RateLimiter';
    }
  }
}
