import type { EdgeBindings } from '../env';
import { misconfigured } from './api-error';

/** Default signed-link lifetime (seconds) when LINK_TTL_SECONDS is unset. */
export const DEFAULT_LINK_TTL_SECONDS = 3600;

/** The edge's settings, parsed from Worker vars and secrets. */
export interface EdgeConfig {
  gpuServiceUrl: string;
  gpuServiceToken: string;
  defaultModel: string;
  linkTtlSeconds: number;
  linkSigningSecret: string;
}

/**
 * Read and check the configuration from the Worker env (vars arrive only per request in Workers,
 * so this runs per request; it is a few string checks).
 * @throws ApiError 500 `server_misconfigured` naming the missing or invalid var/secret.
 */
export function readEdgeConfig(env: EdgeBindings): EdgeConfig {
  const missing = (['GPU_SERVICE_URL', 'GPU_SERVICE_TOKEN', 'LINK_SIGNING_SECRET', 'DEFAULT_MODEL'] as const).filter(
    (name) => typeof env[name] !== 'string' || env[name].length === 0,
  );
  if (missing.length > 0) {
    throw misconfigured(`The edge is missing configuration: ${missing.join(', ')} (set them in wrangler.toml / .dev.vars).`);
  }
  const ttlText = env.LINK_TTL_SECONDS ?? String(DEFAULT_LINK_TTL_SECONDS);
  const linkTtlSeconds = Number(ttlText);
  if (!Number.isInteger(linkTtlSeconds) || linkTtlSeconds <= 0) {
    throw misconfigured(`LINK_TTL_SECONDS must be a positive integer, got "${ttlText}".`);
  }
  return {
    gpuServiceUrl: env.GPU_SERVICE_URL.replace(/\/+$/, ''),
    gpuServiceToken: env.GPU_SERVICE_TOKEN,
    defaultModel: env.DEFAULT_MODEL,
    linkTtlSeconds,
    linkSigningSecret: env.LINK_SIGNING_SECRET,
  };
}
