import type { BackendModel } from '@image-api/shared/api/models';
import { modelDefaults, withDefaultSampler } from '@image-api/shared/model-defaults';
import { DEFAULT_SAMPLER_NAME, type NameStyle, type ResolvedSampler } from '@image-api/shared/sampler-names';
import { invalidParameter } from '../lib/api-error';
import { resolveSamplerOrThrow } from './image-job';

/** What a request said about sampling, in its own style's names; undefined = left unset. */
export interface RequestedSampling {
  sampler?: string;
  /** Ignored for the a1111 style (its combined sampler name implies the schedule). */
  scheduler?: string;
  steps?: number;
  cfg_scale?: number;
}

/** The API style's own defaults, for models without a per-model row; undefined = the field is required. */
export interface StyleDefaults {
  steps?: number;
  cfg_scale?: number;
  /** The field names to report when a required value is missing (a1111 style: request.steps, …). */
  params: { steps: string; cfg_scale: string; sampler: string };
}

/** The sampling a job runs: resolved sampler + schedule, steps, cfg and (per-model) distilled guidance. */
export interface ResolvedSampling {
  resolved: ResolvedSampler;
  steps: number;
  cfg_scale: number;
  /** The model's default distilled guidance (FLUX.1-dev), when the model has one; the request's `guidance` wins. */
  guidance?: number;
}

/**
 * Fill what the request left unset: from the model's row of the per-model defaults table
 * (shared/src/model-defaults.ts, matched on the listing's architecture + variant) when it has one, else from the
 * API style's defaults. Fields the request set are always kept (and validated as before).
 * @param style the request's sampler name style (sdcpp: OpenAI, comfyui: /v1/img2img, a1111: /v3/async)
 * @throws ApiError 400 naming the style's sampler / scheduler field for an unknown name, or 400 missing_parameter
 *   naming `style.params.*` when a field is unset, the model has no row and the style has no default.
 */
export function resolveSampling(style: NameStyle, model: BackendModel, requested: RequestedSampling, styleDefaults: StyleDefaults): ResolvedSampling {
  const row = modelDefaults(model);
  const missing = (param: string) =>
    invalidParameter(param, `${param} is required for the model "${model.id}" (it has no per-model default; README "Per-model defaults").`, 'missing_parameter');
  const samplerGiven = requested.sampler !== undefined;
  const schedulerGiven = style === 'a1111' ? samplerGiven : requested.scheduler !== undefined;
  if (!row && !samplerGiven && style === 'a1111') throw missing(styleDefaults.params.sampler);
  const named = resolveSamplerOrThrow(style, requested.sampler ?? DEFAULT_SAMPLER_NAME[style], style === 'a1111' ? undefined : requested.scheduler);
  const resolved = row ? withDefaultSampler(named, row, { sampler: samplerGiven, scheduler: schedulerGiven }) : named;
  const steps = requested.steps ?? row?.steps ?? styleDefaults.steps;
  if (steps === undefined) throw missing(styleDefaults.params.steps);
  const cfg = requested.cfg_scale ?? row?.cfg_scale ?? styleDefaults.cfg_scale;
  if (cfg === undefined) throw missing(styleDefaults.params.cfg_scale);
  return { resolved, steps, cfg_scale: cfg, ...(row?.guidance !== undefined ? { guidance: row.guidance } : {}) };
}
