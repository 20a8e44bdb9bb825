import { downloadForbiddenRule, repoAllowed } from '@image-api/shared/hf-allowed-repos';
import { isHfReference, parseHfReference } from '@image-api/shared/hf-reference';
import type { BackendModel } from '@image-api/shared/api/models';
import { ApiError } from '../lib/api-error';
import type { BackendModelArray } from './backend-client';

/**
 * Refuse at submit an `hf.co/<org>/<repo>` checkpoint the GPU service would refuse to download (issue 10
 * item 1): on the async routes the job reaches the GPU service only later, from the Queue consumer, so
 * without this the task would be accepted and fail with the GPU service's 403. The rule is the GPU
 * service's own (shared/src/hf-allowed-repos.ts) over the HF_ALLOWED_REPOS it reports in GET /v1/models
 * (`hf_downloads`); a key with the `models:download` scope may download any repository.
 *
 * Nothing is refused when the reference is already on the GPU service (`model` is its downloaded folder,
 * not the stand-in model-catalog.ts makes for a reference it does not list: the service runs what is on disk
 * without downloading), or when the service reports no rules (an older service: it still decides itself).
 * @param ref the request's model field as sent.
 * @param model what ModelCatalog.findCheckpoint resolved `ref` to.
 * @param models the GPU service's model list (its `hf_downloads`).
 * @param anyRepo the key has the `models:download` scope.
 * @param param the public request field named in the error (e.g. `request.model_name`).
 * @throws ApiError 403 permission_error `model_download_forbidden` naming `param`, with the GPU service's rule.
 */
export function checkHfDownloadAllowed(ref: string, model: BackendModel, models: BackendModelArray, anyRepo: boolean, param: string): void {
  if (anyRepo || !isHfReference(ref) || model.id !== ref || !models.hf_downloads) return;
  const { repo } = parseHfReference(ref);
  const patterns = models.hf_downloads.allowed_repos;
  if (repoAllowed(patterns, repo)) return;
  throw new ApiError(403, 'permission_error', 'model_download_forbidden', `${param}: "${ref}" may not be downloaded: ${downloadForbiddenRule(patterns, repo)}`, param);
}
