import type { EdgeBindings } from '../env';
import { invalidParameter, misconfigured } from './api-error';

/** Default signed-link lifetime (seconds) when LINK_TTL_SECONDS is unset. */
export const DEFAULT_LINK_TTL_SECONDS = 3600;
/** Default longest lifetime (seconds) a request may ask for when LINK_TTL_MAX_SECONDS is unset: 7 days. */
export const DEFAULT_LINK_TTL_MAX_SECONDS = 7 * 86_400;
/** Shortest per-request link lifetime (seconds): a link must survive the client reading the response. */
export const MIN_LINK_TTL_SECONDS = 60;
/** The request field (JSON body, multipart form or query string) that sets a link's lifetime. */
export const LINK_TTL_FIELD = 'link_ttl_seconds';

/**
 * Optional vars read here that wrangler.toml may leave out (not part of {@link EdgeBindings}, so a
 * deployment without them keeps working).
 * - GPU_BACKENDS: comma-separated GPU service base URLs sharing GPU_SERVICE_TOKEN; empty/absent →
 *   GPU_SERVICE_URL alone.
 * - LINK_TTL_MAX_SECONDS: the longest `link_ttl_seconds` a request may ask for (default 7 days).
 */
export interface OptionalEdgeVars {
  GPU_BACKENDS?: string;
  LINK_TTL_MAX_SECONDS?: string;
}

/** The edge's settings, parsed from Worker vars and secrets. */
export interface EdgeConfig {
  /** The first GPU backend (GPU_BACKENDS[0], else GPU_SERVICE_URL); kept for single-backend callers. */
  gpuServiceUrl: string;
  /** Every GPU backend, without trailing slashes, duplicates removed, in configured order (≥ 1). */
  gpuBackendUrls: string[];
  gpuServiceToken: string;
  defaultModel: string;
  /** Default lifetime of signed links, seconds. */
  linkTtlSeconds: number;
  /** Longest lifetime a request may ask for, seconds (≥ linkTtlSeconds). */
  linkTtlMaxSeconds: number;
  linkSigningSecret: string;
}

function positiveInteger(name: string, text: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value <= 0) {
    throw misconfigured(`${name} must be a positive integer, got "${text}".`);
  }
  return value;
}

/**
 * Parse GPU_BACKENDS: comma- (or whitespace-) separated http(s) base URLs. Trailing slashes are
 * dropped and duplicates removed (first occurrence kept).
 * @throws ApiError 500 `server_misconfigured` naming the entry that is not an http(s) URL.
 */
export function parseGpuBackends(text: string): string[] {
  const urls: string[] = [];
  for (const entry of text.split(/[\s,]+/)) {
    if (entry.length === 0) continue;
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      throw misconfigured(`GPU_BACKENDS entry "${entry}" is not a URL.`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw misconfigured(`GPU_BACKENDS entry "${entry}" must be an http(s) URL.`);
    }
    const base = entry.replace(/\/+$/, '');
    if (!urls.includes(base)) urls.push(base);
  }
  return urls;
}

/**
 * Read and check the configuration from the Worker env (vars arrive only per request in Workers,
 * so this runs per request; it is a few string checks).
 * @throws ApiError 500 `server_misconfigured` naming the missing or invalid var/secret.
 */
export function readEdgeConfig(env: EdgeBindings & OptionalEdgeVars): EdgeConfig {
  const backends = parseGpuBackends(env.GPU_BACKENDS ?? '');
  const required = ['GPU_SERVICE_TOKEN', 'LINK_SIGNING_SECRET', 'DEFAULT_MODEL'] as const;
  const missing: string[] = required.filter((name) => typeof env[name] !== 'string' || env[name].length === 0);
  if (backends.length === 0 && (typeof env.GPU_SERVICE_URL !== 'string' || env.GPU_SERVICE_URL.length === 0)) {
    missing.unshift('GPU_SERVICE_URL (or GPU_BACKENDS)');
  }
  if (missing.length > 0) {
    throw misconfigured(`The edge is missing configuration: ${missing.join(', ')} (set them in wrangler.toml / .dev.vars).`);
  }
  const gpuBackendUrls = backends.length > 0 ? backends : [env.GPU_SERVICE_URL.replace(/\/+$/, '')];
  const linkTtlSeconds = positiveInteger('LINK_TTL_SECONDS', env.LINK_TTL_SECONDS ?? String(DEFAULT_LINK_TTL_SECONDS));
  const linkTtlMaxSeconds = positiveInteger(
    'LINK_TTL_MAX_SECONDS',
    env.LINK_TTL_MAX_SECONDS ?? String(Math.max(DEFAULT_LINK_TTL_MAX_SECONDS, linkTtlSeconds)),
  );
  if (linkTtlMaxSeconds < linkTtlSeconds) {
    throw misconfigured(`LINK_TTL_MAX_SECONDS (${linkTtlMaxSeconds}) must not be below LINK_TTL_SECONDS (${linkTtlSeconds}).`);
  }
  return {
    gpuServiceUrl: gpuBackendUrls[0],
    gpuBackendUrls,
    gpuServiceToken: env.GPU_SERVICE_TOKEN,
    defaultModel: env.DEFAULT_MODEL,
    linkTtlSeconds,
    linkTtlMaxSeconds,
    linkSigningSecret: env.LINK_SIGNING_SECRET,
  };
}

/**
 * The lifetime of the signed links of one response: the request's `link_ttl_seconds` when given,
 * else LINK_TTL_SECONDS. Accepts a number or a decimal string (multipart forms and query strings
 * carry strings). Call it before any GPU work so a bad value costs nothing.
 * @param requested the raw field value (undefined/null/"" = not given).
 * @returns seconds, an integer in [MIN_LINK_TTL_SECONDS, config.linkTtlMaxSeconds].
 * @throws ApiError 400 `invalid_parameter`, param "link_ttl_seconds", when it is not an integer in range.
 */
export function resolveLinkTtl(requested: unknown, config: Pick<EdgeConfig, 'linkTtlSeconds' | 'linkTtlMaxSeconds'>): number {
  if (requested === undefined || requested === null || requested === '') return config.linkTtlSeconds;
  const value = typeof requested === 'string' && /^\s*\d+\s*$/.test(requested) ? Number(requested) : requested;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < MIN_LINK_TTL_SECONDS || value > config.linkTtlMaxSeconds) {
    throw invalidParameter(
      LINK_TTL_FIELD,
      `${LINK_TTL_FIELD} must be an integer number of seconds between ${MIN_LINK_TTL_SECONDS} and ${config.linkTtlMaxSeconds}.`,
    );
  }
  return value;
}
