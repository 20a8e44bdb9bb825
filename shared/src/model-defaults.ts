import type { BackendModel } from './api/models';
import type { CanonicalSamplerId, CanonicalScheduleId, ResolvedSampler } from './sampler-names';

/**
 * Generation defaults of one model family, applied by the edge when a request leaves steps / cfg / sampler /
 * scheduler unset (README "Per-model defaults"). Values are the model publishers' documented settings.
 */
export interface ModelDefaults {
  /** Sampling steps. */
  steps: number;
  /** Classifier-free guidance scale (≤ 1: no CFG, the negative prompt is not encoded). */
  cfg_scale: number;
  /** Distilled guidance (a transformer input, FLUX.1-dev), only for models that take one. */
  guidance?: number;
  /** Canonical sampler and schedule ids (shared/src/sampler-names.ts). */
  sampler: CanonicalSamplerId;
  scheduler: CanonicalScheduleId;
  /** Where the values come from. */
  source: string;
}

/** One row of {@link MODEL_DEFAULTS}: the listing's `architecture` (and `variant`, when the row needs one). */
export interface ModelDefaultsRow extends ModelDefaults {
  architecture: string;
  variant?: string;
}

/**
 * The per-model defaults table: a new model family adds one row. Rows are matched on the GPU service listing's
 * `architecture` (exact) and `variant` (exact; a row without `variant` matches only models listed without one).
 * Flow models use `euler` + `simple`, which reproduce diffusers' FlowMatchEulerDiscreteScheduler sigmas
 * (docs/samplers.md §5). Families without a row keep the API style's own defaults.
 */
export const MODEL_DEFAULTS: readonly ModelDefaultsRow[] = [
  {
    architecture: 'FLUX.1-schnell',
    steps: 4,
    cfg_scale: 1,
    sampler: 'euler',
    scheduler: 'simple',
    source: 'black-forest-labs/FLUX.1-schnell model card and diffusers Flux docs: timestep-distilled, num_inference_steps=4, guidance_scale=0 (no CFG)',
  },
  {
    architecture: 'FLUX.1-dev',
    steps: 50,
    cfg_scale: 1,
    guidance: 3.5,
    sampler: 'euler',
    scheduler: 'simple',
    source: 'black-forest-labs/FLUX.1-dev model card: guidance-distilled, guidance_scale=3.5 (distilled guidance), num_inference_steps=50, no true CFG',
  },
  {
    architecture: 'Stable Diffusion 3.5 Large',
    steps: 28,
    cfg_scale: 3.5,
    sampler: 'euler',
    scheduler: 'simple',
    source: 'stabilityai/stable-diffusion-3.5-large model card: num_inference_steps=28, guidance_scale=3.5',
  },
  {
    architecture: 'Stable Diffusion 3.5 Large',
    variant: 'turbo',
    steps: 4,
    cfg_scale: 1,
    sampler: 'euler',
    scheduler: 'simple',
    source: 'stabilityai/stable-diffusion-3.5-large-turbo model card: num_inference_steps=4, guidance_scale=0.0 (no CFG)',
  },
  {
    architecture: 'Stable Diffusion 3.5 Medium',
    steps: 40,
    cfg_scale: 4.5,
    sampler: 'euler',
    scheduler: 'simple',
    source: 'stabilityai/stable-diffusion-3.5-medium model card: num_inference_steps=40, guidance_scale=4.5',
  },
  {
    architecture: 'Stable Diffusion 3 Medium',
    steps: 28,
    cfg_scale: 7,
    sampler: 'euler',
    scheduler: 'simple',
    source: 'stabilityai/stable-diffusion-3-medium-diffusers model card: num_inference_steps=28, guidance_scale=7.0',
  },
];

/**
 * The defaults row of a listed model, by its `architecture` and `variant`; undefined for a family without a row
 * (SD 1.x / 2.x / SDXL and ONNX exports, which keep each API style's defaults).
 */
export function modelDefaults(model: Pick<BackendModel, 'architecture' | 'variant'>): ModelDefaults | undefined {
  if (!model.architecture) return undefined;
  return MODEL_DEFAULTS.find((row) => row.architecture === model.architecture && row.variant === model.variant);
}

/**
 * Fill a request's unset sampler / scheduler from a defaults row: a field the request set is kept as resolved,
 * an unset one takes the row's. Options and discard_penultimate_sigma follow the resolved sampler when the request
 * named it, else none.
 */
export function withDefaultSampler(resolved: ResolvedSampler | undefined, defaults: ModelDefaults, given: { sampler: boolean; scheduler: boolean }): ResolvedSampler {
  return {
    sampler: given.sampler && resolved ? resolved.sampler : defaults.sampler,
    scheduler: given.scheduler && resolved ? resolved.scheduler : defaults.scheduler,
    options: given.sampler && resolved ? resolved.options : {},
    discard_penultimate_sigma: given.sampler && resolved ? resolved.discard_penultimate_sigma : false,
  };
}
