import {
  ASYNC_HIRES_UPSCALERS,
  type AsyncExtra,
  type AsyncGenerationRequest,
  type AsyncTaskType,
} from '@image-api/shared/api/async-tasks';
import type { BackendModel } from '@image-api/shared/api/models';
import type { GenerationJobInput } from '@image-api/shared/generation-job';
import { samplerJobFields } from '@image-api/shared/sampler-names';
import { ASYNC_ADDON_STYLE, resolveRequestAddons } from '../addons/request-addons';
import { ApiError, invalidParameter, unsupportedParameter } from '../lib/api-error';
import { resolveSampling, type ResolvedSampling } from '../inputs/sampling-defaults';
import { randomSeed } from '../lib/crypto';
import { resolveSeed } from '../inputs/image-job';
import { resolveHiresUpscaler, transparentBackgroundFields } from '../postprocess/postprocess-options';
import { restoreFacesFields } from '../postprocess/restore-faces-options';

/** The GenerationJob mode and the model capability each async endpoint needs. */
export const ASYNC_TASK_MODES: Readonly<Record<AsyncTaskType, 'txt2img' | 'img2img' | 'inpaint'>> = {
  TXT_TO_IMG: 'txt2img',
  IMG_TO_IMG: 'img2img',
  INPAINTING: 'inpaint',
};

/** Side (pixels) from which we call a checkpoint SDXL-class: SDXL's native 1024² (SD 1.x/2.x are 512/768). */
export const SDXL_NATIVE_SIDE = 1024;

/**
 * Whether a listed checkpoint is SDXL (base or refiner): by the architecture the GPU service detected
 * ("Stable Diffusion XL", "… refiner"), else (ONNX folders say none) by its native size.
 */
export function isSdxl(model: BackendModel): boolean {
  if (model.architecture) return /\bXL\b/.test(model.architecture);
  return Math.min(...model.native_size) >= SDXL_NATIVE_SIDE;
}

/** Inputs of {@link buildAsyncJob}. */
export interface BuildAsyncJobInput {
  taskType: AsyncTaskType;
  request: AsyncGenerationRequest;
  extra: AsyncExtra;
  /** The checkpoint named by request.model_name (already looked up). */
  model: BackendModel;
  /** Every model the GPU service lists, add-ons included (LoRA / VAE / embedding names are checked against it). */
  catalog: readonly BackendModel[];
  taskId: string;
  tenant: string;
  /** Seed source for seed −1 (default: CSPRNG in [0, 2^32 − 1]). */
  pickSeed?: () => number;
}

/**
 * Translate a validated Novita-style request into the GenerationJob (docs/architecture.md, "One internal
 * job"), refusing — never ignoring — what this deployment cannot serve:
 * - model: must have the endpoint's capability (txt2img / img2img / inpaint);
 * - width × height (and hires_fix target) ≤ model.max_pixels;
 * - sampler_name: A1111 combined names via resolveSampler('a1111', …) ("DPM++ 2M Karras" = dpmpp_2m + karras);
 * - steps / guidance_scale / sampler_name unset: the model's per-model default (resolveAsyncSampling), else a 400;
 * - seed −1 → random in [0, 2^32 − 1]; seed + image_num − 1 ≤ 2^64 − 1 (image i uses seed + i);
 * - guidance_scale → cfg_scale; image_num → batch_size; clip_skip passed on (the GPU service refuses it
 *   for exports without hidden states, which fails the task with that reason);
 * - strength with strength_schedule 'scaled' (A1111: ≈ steps × strength steps run); inpainting masks
 *   use mask_mode 'white' (white = repaint);
 * - hires_fix: upscaler Latent | Latent (nearest) | Lanczos, or the id of an upscaler model the GPU service lists
 *   (kind `upscaler`, MODELS_DIR/upscale_models: upscaler "model" + upscale_model; an unknown name is a 400 listing
 *   both); not with inpainting (the engine refuses it);
 * - loras / embeddings / sd_vae (and `<lora:name:strength>` tags in the prompt) → the job's loras / embeddings /
 *   vae, checked against the listing (edge/src/addons/request-addons.ts): an unknown or unusable name is a 400
 *   naming that entry ("request.loras.1.model_name"), more than 5 LoRAs counting the tags a 400 "request.loras";
 * - refiner with switch_at > 0 → refiner_switch_at (+ refiner_model when given; else the GPU service's
 *   SDXL_REFINER_MODEL, and a 400 task failure naming refiner_model when it has none): a 400 on request.refiner
 *   when the base is not SDXL, on request.refiner_model when that model is not listed or not SDXL;
 * - restore_faces: true (+ face_restore_fidelity in [0, 1]) → the job's restore_faces (+ face_restore_fidelity): a
 *   400 naming request.restore_faces, the kind and the role when the deployment lists no usable face detector or
 *   restorer (kind `facerestore`); face_restore_fidelity without restore_faces → 400 on it;
 *   enable_transparent_background: true → background "transparent" (the GPU service's matting model), under Novita's
 *   rule that it is for SDXL checkpoints only; a 400 naming the field (the message says which) for a non-SDXL
 *   model, jpeg output (png and webp carry alpha) or a deployment without a usable model of kind `matting`.
 * init_image / mask are NOT set here: the route stores the inputs in R2 and the consumer adds them.
 * @throws ApiError 400 naming the dotted field (e.g. "request.loras.0.model_name").
 */
export function buildAsyncJob(input: BuildAsyncJobInput): GenerationJobInput {
  const { request, model, extra } = input;
  const mode = ASYNC_TASK_MODES[input.taskType];
  if (!model.capabilities.includes(mode)) {
    throw invalidParameter('request.model_name', `The model "${model.id}" cannot do ${mode}.`);
  }
  if (request.width * request.height > model.max_pixels) {
    throw invalidParameter(
      'request.width',
      `${request.width}x${request.height} has ${request.width * request.height} pixels; the model "${model.id}" allows at most ${model.max_pixels}.`,
    );
  }
  refuseUnservedOptions(input);

  const sampling = resolveAsyncSampling(request, model);
  const seed = resolveSeed(request.seed, request.image_num, input.pickSeed ?? randomSeed, 'request.seed', 'image_num');

  const job: GenerationJobInput = {
    id: input.taskId,
    tenant: input.tenant,
    model: model.id,
    mode,
    prompt: request.prompt,
    negative_prompt: request.negative_prompt,
    width: request.width,
    height: request.height,
    batch_size: request.image_num,
    seed,
    steps: sampling.steps,
    ...samplerJobFields(sampling.resolved),
    cfg_scale: sampling.cfg_scale,
    output: { format: extra.response_image_type, quality: 90 },
    preview: 'none',
  };
  if (sampling.guidance !== undefined) job.guidance = sampling.guidance;
  Object.assign(job, resolveRequestAddons({ loras: request.loras, embeddings: request.embeddings, vae: request.sd_vae }, request.prompt, ASYNC_ADDON_STYLE, input.catalog));
  if (request.clip_skip !== undefined) job.clip_skip = request.clip_skip;
  if (request.refiner && request.refiner.switch_at > 0) {
    job.refiner_switch_at = request.refiner.switch_at;
    if (request.refiner_model !== undefined) job.refiner_model = request.refiner_model;
  }
  if (mode !== 'txt2img') {
    job.strength = request.strength;
    job.strength_schedule = 'scaled';
  }
  if (mode === 'inpaint') job.mask_mode = 'white';
  if (request.hires_fix) {
    const hires = request.hires_fix;
    job.hires_fix = {
      target_width: hires.target_width,
      target_height: hires.target_height,
      strength: hires.strength,
      // Checked against the table and the listing by refuseUnservedOptions.
      ...resolveHiresUpscaler(hires.upscaler, ASYNC_HIRES_UPSCALERS, input.catalog, 'request.hires_fix.upscaler'),
    };
  }
  Object.assign(job, restoreFacesFields(input.catalog, request.restore_faces, 'request.restore_faces', { value: request.face_restore_fidelity, param: 'request.face_restore_fidelity' }));
  if (request.enable_transparent_background) {
    Object.assign(job, transparentBackgroundFields(input.catalog, extra.response_image_type, 'request.enable_transparent_background', 'extra.response_image_type'));
  }
  return job;
}

/**
 * Sampling of a Novita-style request: steps / guidance_scale / sampler_name as given, else the model's per-model
 * default (shared/src/model-defaults.ts); Novita makes them required, so for a model without a row an unset one is
 * a 400 missing_parameter naming it.
 * @throws ApiError 400 naming `request.sampler_name` (unknown name) or the missing field.
 */
export function resolveAsyncSampling(request: AsyncGenerationRequest, model: BackendModel): ResolvedSampling {
  try {
    return resolveSampling(
      'a1111',
      model,
      { sampler: request.sampler_name, steps: request.steps, cfg_scale: request.guidance_scale },
      { params: { steps: 'request.steps', cfg_scale: 'request.guidance_scale', sampler: 'request.sampler_name' } },
    );
  } catch (error) {
    // resolveSamplerOrThrow names the bare style field ("sampler_name"); the async API nests it under request.
    if (error instanceof ApiError && error.param === 'sampler_name') throw new ApiError(error.status, error.type, error.code, error.message, 'request.sampler_name', error.headers);
    throw error;
  }
}

/** The 400s of buildAsyncJob for options the deployment cannot serve (see its docstring). */
function refuseUnservedOptions(input: BuildAsyncJobInput): void {
  const { request, model, extra } = input;
  restoreFacesFields(input.catalog, request.restore_faces, 'request.restore_faces', { value: request.face_restore_fidelity, param: 'request.face_restore_fidelity' });
  if (request.refiner && request.refiner.switch_at > 0) {
    if (!isSdxl(model)) throw invalidParameter('request.refiner', `A refiner continues an SDXL base, and "${model.id}" is not an SDXL checkpoint; remove "refiner" (or set switch_at to 0).`);
    const name = request.refiner_model;
    if (name !== undefined) {
      const refiner = input.catalog.find((entry) => entry.kind === 'checkpoint' && entry.id === name);
      if (!refiner) throw invalidParameter('request.refiner_model', `No checkpoint named "${name}" is available. List them with GET /v3/model?filter.types=checkpoint.`, 'model_not_found');
      if (!isSdxl(refiner)) throw invalidParameter('request.refiner_model', `"${name}" is not an SDXL checkpoint (${refiner.architecture ?? 'unknown architecture'}); a refiner must be one.`);
    }
  }
  if (request.enable_transparent_background) {
    transparentBackgroundFields(input.catalog, extra.response_image_type, 'request.enable_transparent_background', 'extra.response_image_type', () => {
      // Novita documents enable_transparent_background for SDXL checkpoints only; kept as documented there.
      if (!isSdxl(model)) {
        throw unsupportedParameter('request.enable_transparent_background', `A transparent background is for SDXL checkpoints only (as Novita documents it), and "${model.id}" is not one.`);
      }
    });
  }
  if (request.hires_fix) {
    const hires = request.hires_fix;
    resolveHiresUpscaler(hires.upscaler, ASYNC_HIRES_UPSCALERS, input.catalog, 'request.hires_fix.upscaler');
    if (ASYNC_TASK_MODES[input.taskType] === 'inpaint') {
      throw unsupportedParameter('request.hires_fix', 'hires_fix is not available for inpainting.');
    }
    if (hires.target_width < request.width || hires.target_height < request.height) {
      throw invalidParameter('request.hires_fix.target_width', 'hires_fix target_width/target_height must be at least width/height.');
    }
    if (hires.target_width * hires.target_height > model.max_pixels) {
      throw invalidParameter(
        'request.hires_fix.target_width',
        `The hires_fix target ${hires.target_width}x${hires.target_height} has more pixels than the model "${model.id}" allows (${model.max_pixels}).`,
      );
    }
  }
}
