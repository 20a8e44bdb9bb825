/**
 * What `hf.co/<org>/<repo>` references may download (issue 10, item 1), set by the operator of the GPU host:
 * - HF_ALLOWED_REPOS: comma-separated glob patterns over `<org>/<repo>` (`*` = any run of characters except
 *   `/`, `?` = one such character; case-insensitive, as the Hub's repository names are), e.g.
 *   `stabilityai/*,acme/tiny`. Empty or unset: no repository may be downloaded for a tenant (403 on `model`).
 *   A job the edge marks `download_any_repo` (an API key with the `models:download` scope) may download any.
 * - HF_MAX_MODEL_BYTES: most bytes one download may fetch (0 = no cap).
 * - MODELS_DIR_MAX_BYTES: most bytes MODELS_DIR may hold, the files already there plus the downloads under
 *   way plus this one (0 = no budget).
 * Both sizes are checked from the Hub's file listing before any file is fetched, and again while bytes arrive.
 * HF_TOKEN is sent only for repositories HF_ALLOWED_REPOS names. The matching itself is shared with the edge
 * (shared/src/hf-allowed-repos.ts).
 */
export { repoAllowed } from '@image-api/shared/hf-allowed-repos';

/** The download rules of one GPU service. */
export interface HfDownloadPolicy {
  /** Glob patterns over `<org>/<repo>`; empty = no repository for tenants. */
  allowedRepos: string[];
  /** Bytes per downloaded model (0 = no cap). */
  maxModelBytes: number;
  /** Bytes MODELS_DIR may hold in all (0 = no budget). */
  modelsDirMaxBytes: number;
}

/** No downloads for tenants, no size limits (the default when nothing is configured). */
export const CLOSED_POLICY: HfDownloadPolicy = { allowedRepos: [], maxModelBytes: 0, modelsDirMaxBytes: 0 };

const PATTERN = /^[A-Za-z0-9*?][\w.*?-]*\/[\w.*?-]+$/;

/**
 * Parse HF_ALLOWED_REPOS (comma-separated, blanks ignored).
 * @throws Error naming HF_ALLOWED_REPOS and the pattern when one is not `<org>/<repo>` (with wildcards).
 */
export function parseAllowedRepos(raw: string | undefined): string[] {
  const patterns = (raw ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  for (const p of patterns) {
    if (!PATTERN.test(p)) throw new Error(`HF_ALLOWED_REPOS: "${p}" is not an <org>/<repo> pattern (wildcards * and ? allowed, e.g. stabilityai/*)`);
  }
  return patterns;
}

/** The policy as GET /v1/models reports it (`hf_downloads`). */
export function describePolicy(policy: HfDownloadPolicy): { allowed_repos: string[]; max_model_bytes: number; models_dir_max_bytes: number } {
  return { allowed_repos: [...policy.allowedRepos], max_model_bytes: policy.maxModelBytes, models_dir_max_bytes: policy.modelsDirMaxBytes };
}
