/**
 * The public options that run a post-processing model on the GPU service (README, "Post-processing"), checked
 * against its model listing before anything is queued, so a request the deployment cannot serve is a 400 naming
 * the field — never a silently skipped stage:
 * - a transparent background (OpenAI `background: "transparent"`, async `enable_transparent_background`) needs a
 *   usable model of kind `matting` and an output format with alpha (png or webp);
 * - a hires-fix upscaler name is a built-in one (the style's table) or the id of a usable model of kind `upscaler`.
 */
import type { BackendModel } from '@image-api/shared/api/models';
import type { GenerationJobInput } from '@image-api/shared/generation-job';
import type { GpuClient } from '../gpu/backend-client';
import type { ModelCatalog } from '../gpu/model-catalog';
import { invalidParameter, unsupportedParameter } from '../lib/api-error';

/** Usable (error-free) listed models of a post-processing kind, in listing order. */
export function usableModels(models: readonly BackendModel[], kind: 'matting' | 'facerestore' | 'upscaler'): BackendModel[] {
  return models.filter((model) => model.kind === kind && !model.error);
}

/**
 * The job fields of a transparent background.
 * @param param the public field that asked for it (`background`, `request.enable_transparent_background`).
 * @param formatField the public field that chose the output format, for the message.
 * @param styleRule throws the style's own refusal, if it has one.
 * @throws ApiError 400 `invalid_parameter` on `param` for jpeg output; 400 `unsupported_parameter` on `param` when the
 *         deployment lists no usable matting model (the message names the kind).
 */
export function transparentBackgroundFields(
  models: readonly BackendModel[],
  format: 'png' | 'jpeg' | 'webp',
  param: string,
  formatField: string,
  styleRule?: () => void,
): Pick<GenerationJobInput, 'background'> {
  if (format === 'jpeg') {
    throw invalidParameter(param, `A transparent background needs an output format with alpha: ${formatField} "png" or "webp" (JPEG has none).`);
  }
  // A style's own rule (Novita: SDXL checkpoints only), checked after the format and before the deployment's models.
  styleRule?.();
  if (usableModels(models, 'matting').length === 0) {
    throw unsupportedParameter(param, 'A transparent background needs a model of kind "matting" (background removal), and this deployment has none (GET /v1/models lists models with their kind).');
  }
  return { background: 'transparent' };
}

/**
 * The model listing, re-fetched once when the cached one lacks a usable model of `kind` (one just added to MODELS_DIR).
 * @throws ApiError from the GPU client.
 */
export function listingWith(catalog: Pick<ModelCatalog, 'listHaving'>, pool: Pick<GpuClient, 'listModels'> & { key: string }, kind: 'matting' | 'facerestore' | 'upscaler', name?: string): Promise<BackendModel[]> {
  return catalog.listHaving(pool, pool.key, (models) => usableModels(models, kind).some((m) => name === undefined || m.id === name));
}

/**
 * A hires-fix upscaler by public name: one of `builtIn` (name → GenerationJob upscaler), else a usable upscaler model.
 * @throws ApiError 400 on `param` for any other name, listing the built-in names and the upscaler models.
 */
export function resolveHiresUpscaler<T extends string>(
  name: string,
  builtIn: Readonly<Record<string, T>>,
  models: readonly BackendModel[],
  param: string,
): { upscaler: T | 'model'; upscale_model?: string } {
  if (Object.prototype.hasOwnProperty.call(builtIn, name)) return { upscaler: builtIn[name] };
  const model = models.find((m) => m.kind === 'upscaler' && m.id === name);
  if (model && model.error) throw invalidParameter(param, `The upscaler model "${name}" cannot be used: ${model.error}`);
  if (model) return { upscaler: 'model', upscale_model: model.id };
  const available = [...Object.keys(builtIn), ...usableModels(models, 'upscaler').map((m) => m.id)];
  throw invalidParameter(param, `Unknown upscaler "${name}". Available: ${available.join(', ')}.`);
}
