/**
 * The public face-restoration options (README, "Post-processing", "Restore faces"), checked against the GPU
 * service's model listing before anything is queued: `restore_faces: true` needs a usable model of kind
 * `facerestore` with role `detector` and one with role `restorer`; else a 400 naming the field and the missing kind
 * and role, never a silently skipped stage. The fidelity (CodeFormer's `w`, [0, 1]) is only taken with
 * restore_faces.
 */
import type { BackendModel } from '@image-api/shared/api/models';
import type { GenerationJobInput } from '@image-api/shared/generation-job';
import { invalidParameter, unsupportedParameter } from '../lib/api-error';
import { usableModels } from './postprocess-options';

/**
 * The job fields of restore_faces.
 * @param param the public field that asked for it (`request.restore_faces`).
 * @param fidelity the public fidelity value, if given, and its field name.
 * @throws ApiError 400 `unsupported_parameter` on `param` when the deployment lists no usable face detector or
 *         restorer (the message names the kind and role); 400 `invalid_parameter` on the fidelity field when it is
 *         given without restore_faces.
 */
export function restoreFacesFields(
  models: readonly BackendModel[],
  restore: boolean,
  param: string,
  fidelity: { value?: number; param: string },
): Pick<GenerationJobInput, 'restore_faces' | 'face_restore_fidelity'> {
  if (!restore) {
    if (fidelity.value !== undefined) throw invalidParameter(fidelity.param, `Only used with ${param} true.`);
    return {};
  }
  const usable = usableModels(models, 'facerestore');
  for (const role of ['detector', 'restorer'] as const) {
    if (!usable.some((m) => m.role === role)) {
      const what = role === 'detector' ? 'a face detector' : 'a GFPGAN / CodeFormer-style restorer';
      throw unsupportedParameter(param, `Restoring faces needs a model of kind "facerestore" with role "${role}" (${what}), and this deployment has none (GET /v1/models lists models with their kind and role); set "restore_faces" to false.`);
    }
  }
  return { restore_faces: true, ...(fidelity.value !== undefined ? { face_restore_fidelity: fidelity.value } : {}) };
}
