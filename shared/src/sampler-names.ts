/**
 * Public sampler / scheduler names of the three API styles → canonical (algorithm, schedule, options).
 *
 * The one table behind docs/samplers.md §4. Each style has its own vocabulary:
 * - 'sdcpp'   stable-diffusion.cpp / GPUStack: `sample_method` (euler_a, dpm++2m, …) and `schedule_method`
 *             (discrete, karras, exponential, ays, gits);
 * - 'comfyui' ComfyUI: `sampler_name` (euler, dpmpp_2m_sde_gpu, …) and `scheduler` (normal, karras, …);
 * - 'a1111'   AUTOMATIC1111 / Novita legacy combined names ("DPM++ 2M Karras") in `sampler_name`, plus
 *             the optional A1111 ≥ 1.9 `scheduler` ("Schedule type": Automatic, Karras, …).
 * Names match exactly as written first, then case-insensitively (surrounding whitespace ignored).
 * Variants follow each ecosystem (docs/samplers.md §4.4, recommended choice): ComfyUI's lms/ipndm/ipndm_v
 * replace the final step by the denoised estimate; A1111's LMS and sd.cpp's ipndm/ipndm_v do not.
 *
 * Pure data and pure functions: no Node or Workers APIs (used by the edge and the GPU service).
 */

/** The three API styles whose sampler vocabularies we accept. */
export type NameStyle = 'sdcpp' | 'comfyui' | 'a1111';
export const NAME_STYLES: readonly NameStyle[] = ['sdcpp', 'comfyui', 'a1111'];

/**
 * Canonical sampler ids: the ComfyUI algorithm names plus dpmpp_2m_v2 (sd.cpp) and plms (A1111).
 * These are the keys of the GPU service's sampler registry (gpu-service/src/diffusion/samplers/index.ts)
 * and the values of GenerationJob.sampler.
 */
export const CANONICAL_SAMPLER_IDS = [
  'euler',
  'euler_ancestral',
  'heun',
  'heunpp2',
  'dpm_2',
  'dpm_2_ancestral',
  'lms',
  'dpm_fast',
  'dpm_adaptive',
  'dpmpp_2s_ancestral',
  'dpmpp_sde',
  'dpmpp_2m',
  'dpmpp_2m_v2',
  'dpmpp_2m_sde',
  'dpmpp_3m_sde',
  'ddpm',
  'ddim',
  'plms',
  'lcm',
  'ipndm',
  'ipndm_v',
  'deis',
  'uni_pc',
  'uni_pc_bh2',
  'euler_cfg_pp',
  'euler_ancestral_cfg_pp',
] as const;
export type CanonicalSamplerId = (typeof CANONICAL_SAMPLER_IDS)[number];

/**
 * Canonical schedule ids (docs/samplers.md §1.2; implemented in gpu-service/src/diffusion/schedules).
 * 'ays' is the SD1.5 Align-Your-Steps table, 'ays_sdxl' the SDXL one (the job layer picks by model family).
 * 'normal_no_final_zero' is A1111's UniPC grid: normal(N+1) without its trailing 0, i.e. σ(linspace(999, 0,
 * N+1)), N steps ending at σ_min (docs/samplers.md §3.3, §4.3).
 */
export const CANONICAL_SCHEDULE_IDS = [
  'normal',
  'karras',
  'exponential',
  'sgm_uniform',
  'simple',
  'ddim_uniform',
  'beta',
  'ays',
  'ays_sdxl',
  'gits',
  'polyexponential',
  'normal_no_final_zero',
] as const;
export type CanonicalScheduleId = (typeof CANONICAL_SCHEDULE_IDS)[number];

/** Per-style sampler options the name implies (merged over the registry defaults by the job layer). */
export interface ResolvedSamplerOptions {
  /** Ancestral noise fraction η (docs/samplers.md §0.1). */
  eta?: number;
  /** Scale of injected noise. */
  s_noise?: number;
  /** Algorithm variant flags: lms {final}, ipndm {final}, ipndm_v {flavor}, dpmpp_2m_sde {solver_type}, uni_pc {variant}. */
  variant?: Record<string, string>;
}

/** What one public (sampler, scheduler) pair means. */
export interface ResolvedSampler {
  sampler: CanonicalSamplerId;
  scheduler: CanonicalScheduleId;
  options: ResolvedSamplerOptions;
  /** Build the schedule for steps+1 and remove its penultimate entry (docs/samplers.md §1.3). */
  discard_penultimate_sigma: boolean;
}

/**
 * The GenerationJob fields a resolved name decides (sampler, scheduler, sampler_options,
 * discard_penultimate_sigma), so every API style builds them the same way.
 */
export function samplerJobFields(resolved: ResolvedSampler): {
  sampler: CanonicalSamplerId;
  scheduler: CanonicalScheduleId;
  sampler_options: ResolvedSamplerOptions;
  discard_penultimate_sigma: boolean;
} {
  return {
    sampler: resolved.sampler,
    scheduler: resolved.scheduler,
    sampler_options: resolved.options,
    discard_penultimate_sigma: resolved.discard_penultimate_sigma,
  };
}

/**
 * Thrown for a sampler or scheduler name the style does not know. `param` is that style's field name
 * (sample_method / schedule_method, sampler_name / scheduler) and `accepted` every name it accepts, so the
 * caller can answer 400 invalid_request_error with a message that lists them.
 */
export class SamplerNameError extends Error {
  readonly param: string;
  readonly accepted: string[];
  readonly style: NameStyle;
  constructor(style: NameStyle, param: string, given: string, accepted: readonly string[]) {
    super(`Unknown ${param} '${given}'. Accepted values: ${accepted.join(', ')}.`);
    this.name = 'SamplerNameError';
    this.style = style;
    this.param = param;
    this.accepted = [...accepted];
  }
}

/** One sampler-name row: canonical algorithm, implied options, and (a1111 only) the implied schedule. */
interface SamplerRow {
  sampler: CanonicalSamplerId;
  options?: ResolvedSamplerOptions;
  discard?: boolean;
  /** a1111 combined names carry their schedule; other styles take it from the scheduler field. */
  scheduler?: CanonicalScheduleId;
}

const ETA1: ResolvedSamplerOptions = { eta: 1 };

/** docs/samplers.md §4.1 — stable-diffusion.cpp / GPUStack `sample_method`. */
const SDCPP_SAMPLERS: Record<string, SamplerRow> = {
  euler_a: { sampler: 'euler_ancestral', options: ETA1 },
  euler: { sampler: 'euler' },
  heun: { sampler: 'heun' },
  // sd.cpp does not discard the penultimate sigma for dpm2.
  dpm2: { sampler: 'dpm_2' },
  'dpm++2s_a': { sampler: 'dpmpp_2s_ancestral', options: ETA1 },
  'dpm++2m': { sampler: 'dpmpp_2m' },
  'dpm++2mv2': { sampler: 'dpmpp_2m_v2' },
  ipndm: { sampler: 'ipndm', options: { variant: { final: 'multistep' } } },
  ipndm_v: { sampler: 'ipndm_v', options: { variant: { flavor: 'sdcpp' } } },
  lcm: { sampler: 'lcm' },
};

/** docs/samplers.md §4.1 — `schedule_method`. discrete ≡ ComfyUI normal. */
const SDCPP_SCHEDULERS: Record<string, CanonicalScheduleId> = {
  discrete: 'normal',
  karras: 'karras',
  exponential: 'exponential',
  ays: 'ays',
  gits: 'gits',
};

/** docs/samplers.md §4.2 — ComfyUI `sampler_name`. The *_gpu names are aliases (only the tree's device differs). */
const COMFYUI_SAMPLERS: Record<string, SamplerRow> = {
  euler: { sampler: 'euler' },
  euler_cfg_pp: { sampler: 'euler_cfg_pp' },
  euler_ancestral: { sampler: 'euler_ancestral', options: ETA1 },
  euler_ancestral_cfg_pp: { sampler: 'euler_ancestral_cfg_pp', options: ETA1 },
  heun: { sampler: 'heun' },
  heunpp2: { sampler: 'heunpp2' },
  dpm_2: { sampler: 'dpm_2', discard: true },
  dpm_2_ancestral: { sampler: 'dpm_2_ancestral', options: ETA1, discard: true },
  lms: { sampler: 'lms', options: { variant: { final: 'denoise' } } },
  dpm_fast: { sampler: 'dpm_fast', options: { eta: 0 } },
  dpm_adaptive: { sampler: 'dpm_adaptive', options: { eta: 0 } },
  dpmpp_2s_ancestral: { sampler: 'dpmpp_2s_ancestral', options: ETA1 },
  dpmpp_sde: { sampler: 'dpmpp_sde', options: ETA1 },
  dpmpp_sde_gpu: { sampler: 'dpmpp_sde', options: ETA1 },
  dpmpp_2m: { sampler: 'dpmpp_2m' },
  dpmpp_2m_sde: { sampler: 'dpmpp_2m_sde', options: { eta: 1, variant: { solver_type: 'midpoint' } } },
  dpmpp_2m_sde_gpu: { sampler: 'dpmpp_2m_sde', options: { eta: 1, variant: { solver_type: 'midpoint' } } },
  dpmpp_2m_sde_heun: { sampler: 'dpmpp_2m_sde', options: { eta: 1, variant: { solver_type: 'heun' } } },
  dpmpp_2m_sde_heun_gpu: { sampler: 'dpmpp_2m_sde', options: { eta: 1, variant: { solver_type: 'heun' } } },
  dpmpp_3m_sde: { sampler: 'dpmpp_3m_sde', options: ETA1 },
  dpmpp_3m_sde_gpu: { sampler: 'dpmpp_3m_sde', options: ETA1 },
  ddpm: { sampler: 'ddpm' },
  lcm: { sampler: 'lcm' },
  ipndm: { sampler: 'ipndm', options: { variant: { final: 'denoise' } } },
  ipndm_v: { sampler: 'ipndm_v', options: { variant: { flavor: 'comfy' } } },
  deis: { sampler: 'deis' },
  ddim: { sampler: 'ddim' },
  uni_pc: { sampler: 'uni_pc', options: { variant: { variant: 'bh1' } }, discard: true },
  uni_pc_bh2: { sampler: 'uni_pc_bh2', options: { variant: { variant: 'bh2' } }, discard: true },
};

/** docs/samplers.md §4.2 — ComfyUI `scheduler`. */
const COMFYUI_SCHEDULERS: Record<string, CanonicalScheduleId> = {
  normal: 'normal',
  karras: 'karras',
  exponential: 'exponential',
  sgm_uniform: 'sgm_uniform',
  simple: 'simple',
  ddim_uniform: 'ddim_uniform',
  beta: 'beta',
};

const A1111_LMS: SamplerRow = { sampler: 'lms', options: { variant: { final: 'lms' } } };

/**
 * docs/samplers.md §4.3 — A1111 / Novita legacy combined names. No suffix = "Automatic" = normal; "Karras" =
 * karras. A1111 passes its ancestral η (1.0) to every sampler with an eta parameter, incl. DPM fast/adaptive.
 */
const A1111_SAMPLERS: Record<string, SamplerRow> = {
  'Euler a': { sampler: 'euler_ancestral', options: ETA1, scheduler: 'normal' },
  Euler: { sampler: 'euler', scheduler: 'normal' },
  LMS: { ...A1111_LMS, scheduler: 'normal' },
  Heun: { sampler: 'heun', scheduler: 'normal' },
  DPM2: { sampler: 'dpm_2', scheduler: 'normal', discard: true },
  'DPM2 a': { sampler: 'dpm_2_ancestral', options: ETA1, scheduler: 'normal', discard: true },
  'DPM++ 2S a': { sampler: 'dpmpp_2s_ancestral', options: ETA1, scheduler: 'normal' },
  'DPM++ 2M': { sampler: 'dpmpp_2m', scheduler: 'normal' },
  'DPM++ SDE': { sampler: 'dpmpp_sde', options: ETA1, scheduler: 'normal' },
  // Use the schedule only for σ_max = σ[0] and its last non-zero σ (the table's σ_min for 'normal').
  'DPM fast': { sampler: 'dpm_fast', options: ETA1, scheduler: 'normal' },
  'DPM adaptive': { sampler: 'dpm_adaptive', options: ETA1, scheduler: 'normal' },
  'LMS Karras': { ...A1111_LMS, scheduler: 'karras' },
  'DPM2 Karras': { sampler: 'dpm_2', scheduler: 'karras', discard: true },
  'DPM2 a Karras': { sampler: 'dpm_2_ancestral', options: ETA1, scheduler: 'karras', discard: true },
  'DPM++ 2S a Karras': { sampler: 'dpmpp_2s_ancestral', options: ETA1, scheduler: 'karras' },
  'DPM++ 2M Karras': { sampler: 'dpmpp_2m', scheduler: 'karras' },
  'DPM++ SDE Karras': { sampler: 'dpmpp_sde', options: ETA1, scheduler: 'karras' },
  // CompVis-style samplers: approximations of A1111 on sigma grids (docs/samplers.md §3.3).
  DDIM: { sampler: 'euler', scheduler: 'ddim_uniform' },
  PLMS: { sampler: 'plms', scheduler: 'ddim_uniform' },
  UniPC: { sampler: 'uni_pc', options: { variant: { variant: 'bh1' } }, scheduler: 'normal_no_final_zero' },
};

/**
 * A1111 ≥ 1.9 "Schedule type" labels (optional `scheduler` field). 'Automatic' keeps the schedule the
 * combined sampler name implies; any other label overrides it. 'Uniform' is the model's own
 * linspace-in-t grid (= normal); 'Align Your Steps' is the SD1.5 table.
 */
const A1111_SCHEDULERS: Record<string, CanonicalScheduleId | 'automatic'> = {
  Automatic: 'automatic',
  Uniform: 'normal',
  Karras: 'karras',
  Exponential: 'exponential',
  Polyexponential: 'polyexponential',
  'SGM Uniform': 'sgm_uniform',
  'Align Your Steps': 'ays',
  Simple: 'simple',
  Normal: 'normal',
  DDIM: 'ddim_uniform',
  Beta: 'beta',
};

const SAMPLER_TABLES: Record<NameStyle, Record<string, SamplerRow>> = {
  sdcpp: SDCPP_SAMPLERS,
  comfyui: COMFYUI_SAMPLERS,
  a1111: A1111_SAMPLERS,
};

const SCHEDULER_TABLES: Record<NameStyle, Record<string, CanonicalScheduleId | 'automatic'>> = {
  sdcpp: SDCPP_SCHEDULERS,
  comfyui: COMFYUI_SCHEDULERS,
  a1111: A1111_SCHEDULERS,
};

/** The request field that carries the sampler / scheduler name in each style (for 400 error params). */
export const SAMPLER_PARAM: Record<NameStyle, string> = {
  sdcpp: 'sample_method',
  comfyui: 'sampler_name',
  a1111: 'sampler_name',
};
export const SCHEDULER_PARAM: Record<NameStyle, string> = {
  sdcpp: 'schedule_method',
  comfyui: 'scheduler',
  a1111: 'scheduler',
};

/** Every accepted public sampler name per style, as written (for zod enums and docs). */
export const SAMPLER_NAMES: Record<NameStyle, readonly string[]> = {
  sdcpp: Object.keys(SDCPP_SAMPLERS),
  comfyui: Object.keys(COMFYUI_SAMPLERS),
  a1111: Object.keys(A1111_SAMPLERS),
};

/** Every accepted public scheduler name per style, as written (for zod enums and docs). */
export const SCHEDULER_NAMES: Record<NameStyle, readonly string[]> = {
  sdcpp: Object.keys(SDCPP_SCHEDULERS),
  comfyui: Object.keys(COMFYUI_SCHEDULERS),
  a1111: Object.keys(A1111_SCHEDULERS),
};

/** Each style's default names when the request omits them (README "Public API"). */
export const DEFAULT_SAMPLER_NAME: Record<NameStyle, string> = {
  sdcpp: 'euler_a',
  comfyui: 'euler',
  a1111: 'Euler a',
};
export const DEFAULT_SCHEDULER_NAME: Record<NameStyle, string> = {
  sdcpp: 'discrete',
  comfyui: 'normal',
  a1111: 'Automatic',
};

/** Exact key first, then a case-insensitive, whitespace-trimmed match; undefined when none. */
function lookup<T>(table: Record<string, T>, name: string): T | undefined {
  if (Object.prototype.hasOwnProperty.call(table, name)) return table[name];
  const wanted = name.trim().toLowerCase();
  for (const key of Object.keys(table)) {
    if (key.toLowerCase() === wanted) return table[key];
  }
  return undefined;
}

/** Deep-enough copy so callers can mutate the result without touching the table. */
function copyOptions(options: ResolvedSamplerOptions | undefined): ResolvedSamplerOptions {
  const out: ResolvedSamplerOptions = {};
  if (!options) return out;
  if (options.eta !== undefined) out.eta = options.eta;
  if (options.s_noise !== undefined) out.s_noise = options.s_noise;
  if (options.variant) out.variant = { ...options.variant };
  return out;
}

/** True when `name` is an accepted sampler name of `style` (exact or case-insensitive). */
export function isSamplerName(style: NameStyle, name: string): boolean {
  return lookup(SAMPLER_TABLES[style], name) !== undefined;
}

/** True when `name` is an accepted scheduler name of `style` (exact or case-insensitive). */
export function isSchedulerName(style: NameStyle, name: string): boolean {
  return lookup(SCHEDULER_TABLES[style], name) !== undefined;
}

/**
 * Resolve a public (sampler, scheduler) pair of one API style to the canonical job fields
 * (docs/samplers.md §4). `schedulerName` undefined or '' means the style's default (sdcpp 'discrete', comfyui
 * 'normal', a1111 'Automatic' = the schedule the combined name implies).
 *
 * Notes: sd.cpp's `lcm` sampler uses sd.cpp's own lcm schedule upstream; we have no such public schedule
 * and use the requested one (default discrete = normal). 'ays' is the SD1.5 table; the job layer may swap
 * it for 'ays_sdxl' on SDXL models.
 *
 * @throws SamplerNameError (param = the style's field name, accepted = that field's names) for an unknown
 *   sampler or scheduler name.
 */
export function resolveSampler(style: NameStyle, samplerName: string, schedulerName?: string): ResolvedSampler {
  const samplerTable = SAMPLER_TABLES[style];
  if (!samplerTable) {
    throw new RangeError(`Unknown API style '${String(style)}'. Accepted: ${NAME_STYLES.join(', ')}.`);
  }
  const row = lookup(samplerTable, samplerName);
  if (!row) throw new SamplerNameError(style, SAMPLER_PARAM[style], samplerName, SAMPLER_NAMES[style]);

  let scheduler: CanonicalScheduleId;
  const requested = schedulerName === undefined || schedulerName.trim() === '' ? DEFAULT_SCHEDULER_NAME[style] : schedulerName;
  const mapped = lookup(SCHEDULER_TABLES[style], requested);
  if (mapped === undefined) {
    throw new SamplerNameError(style, SCHEDULER_PARAM[style], requested, SCHEDULER_NAMES[style]);
  }
  if (mapped === 'automatic') {
    // Only a1111 has 'automatic': the combined sampler name decides.
    scheduler = row.scheduler ?? 'normal';
  } else {
    scheduler = mapped;
  }

  return {
    sampler: row.sampler,
    scheduler,
    options: copyOptions(row.options),
    discard_penultimate_sigma: row.discard === true,
  };
}
