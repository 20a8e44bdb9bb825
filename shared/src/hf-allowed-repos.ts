/**
 * HF_ALLOWED_REPOS matching, shared by the GPU service (which enforces it when a job is admitted,
 * gpu-service/src/models/model-registry.ts) and the edge (which refuses a forbidden reference at submit on
 * the async routes, whose jobs reach the GPU service only later; edge/src/gpu/hf-download-check.ts), so both
 * decide the same and say the same.
 *
 * Patterns are globs over `<org>/<repo>`: `*` = any run of characters except `/`, `?` = one such character;
 * case-insensitive, as the Hub's repository names are (e.g. `stabilityai/*,acme/tiny`).
 */

function globToRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\-]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${body}$`, 'i');
}

/** Whether `repo` (`<org>/<repo>`) matches one of the patterns (none: false). */
export function repoAllowed(patterns: readonly string[], repo: string): boolean {
  return patterns.some((p) => globToRegExp(p).test(repo));
}

/**
 * Why `repo` may not be downloaded for a key without the `models:download` scope: the text after
 * "may not be downloaded: " in the 403 `model_download_forbidden`.
 */
export function downloadForbiddenRule(patterns: readonly string[], repo: string): string {
  return patterns.length
    ? `the repository "${repo}" matches none of HF_ALLOWED_REPOS (${patterns.join(', ')}); only an API key with the models:download scope may download other repositories`
    : 'this service downloads no repositories for tenants (HF_ALLOWED_REPOS is empty); only an API key with the models:download scope may download one';
}
