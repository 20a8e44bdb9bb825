import { z } from 'zod';
import { linspace } from './linspace';
import type { ModelSchedule } from './types';

/**
 * A diffusers `scheduler/scheduler_config.json`, the keys the noise table depends on. Unknown keys
 * (`_class_name`, `clip_sample`, `set_alpha_to_one`, …) pass through untouched. Defaults are the
 * diffusers ones for a key that is absent (EulerDiscreteScheduler / DDIMScheduler signatures).
 */
export const SchedulerConfigSchema = z.looseObject({
  num_train_timesteps: z.number().int().min(2).max(100_000).default(1000),
  beta_start: z.number().positive().lt(1).default(0.0001),
  beta_end: z.number().positive().lt(1).default(0.02),
  beta_schedule: z.enum(['scaled_linear', 'linear', 'squaredcos_cap_v2']).default('linear'),
  /** Explicit β table (overrides beta_schedule); `null` in most exported configs. */
  trained_betas: z.array(z.number()).nullish(),
  /** Explicit ᾱ table (overrides every β setting); some single-file exports ship it. */
  alphas_cumprod: z.array(z.number()).nullish(),
  prediction_type: z.enum(['epsilon', 'v_prediction']).default('epsilon'),
  steps_offset: z.number().int().min(0).default(0),
  timestep_spacing: z.enum(['leading', 'trailing', 'linspace']).default('leading'),
  /** Zero-terminal-SNR rescaling (Lin et al. 2023, "Common Diffusion Noise Schedules and Sample Steps are Flawed"). */
  rescale_betas_zero_snr: z.boolean().default(false),
});
export type SchedulerConfig = z.infer<typeof SchedulerConfigSchema>;

/**
 * ᾱ substituted for an exact 0 at the last step of a zero-terminal-SNR table, so σ_max stays
 * finite (≈ 4518.9); the value ComfyUI uses (comfy/model_sampling.py, rescale_zero_terminal_snr).
 */
const ZERO_SNR_LAST_ALPHA_CUMPROD = 4.8973451890853435e-8;

/** Stable Diffusion 1.x/2.x scheduler_config.json (scaled_linear 0.00085 → 0.012, 1000 steps). */
export const SD15_SCHEDULER_CONFIG = {
  _class_name: 'PNDMScheduler',
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  num_train_timesteps: 1000,
  prediction_type: 'epsilon',
  steps_offset: 1,
  timestep_spacing: 'leading',
  trained_betas: null,
} as const;

/** β table per beta_schedule, float64 (diffusers `betas`, ComfyUI `make_beta_schedule`). */
function betasFor(config: SchedulerConfig): Float64Array {
  const T = config.num_train_timesteps;
  switch (config.beta_schedule) {
    case 'scaled_linear': {
      // β_i = (√β_start + i/(T−1)·(√β_end − √β_start))²  (docs/samplers.md §1.1)
      const roots = linspace(Math.sqrt(config.beta_start), Math.sqrt(config.beta_end), T);
      return roots.map((r) => r * r);
    }
    case 'linear':
      return linspace(config.beta_start, config.beta_end, T);
    case 'squaredcos_cap_v2': {
      // Nichol & Dhariwal 2021 (improved DDPM) cosine schedule: β_i = min(1 − ᾱ(t_{i+1})/ᾱ(t_i), 0.999),
      // ᾱ(t) = cos²((t + 0.008)/1.008 · π/2), t_i = i/T (diffusers betas_for_alpha_bar).
      const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
      const betas = new Float64Array(T);
      for (let i = 0; i < T; i++) betas[i] = Math.min(1 - alphaBar((i + 1) / T) / alphaBar(i / T), 0.999);
      return betas;
    }
  }
}

/** ᾱ_i = Π_{j≤i} (1 − β_j), float64, as torch.cumprod does it (left to right). */
function cumprodOfOneMinus(betas: Float64Array): Float64Array {
  const out = new Float64Array(betas.length);
  let acc = 1;
  for (let i = 0; i < betas.length; i++) {
    acc *= 1 - betas[i];
    out[i] = acc;
  }
  return out;
}

/**
 * Rescales a β table to zero terminal SNR (Lin et al. 2023, Algorithm 1; diffusers
 * `rescale_zero_terminal_snr`): shift and scale √ᾱ so that its last value is 0 and its first is kept.
 */
function rescaleZeroTerminalSnr(betas: Float64Array): Float64Array {
  const sqrtAc = cumprodOfOneMinus(betas).map(Math.sqrt);
  const first = sqrtAc[0];
  const last = sqrtAc[sqrtAc.length - 1];
  const ac = sqrtAc.map((v) => ((v - last) * first) / (first - last)).map((v) => v * v);
  const out = new Float64Array(betas.length);
  out[0] = 1 - ac[0];
  for (let i = 1; i < ac.length; i++) out[i] = 1 - ac[i] / ac[i - 1];
  return out;
}

/** Formats a zod error as one line naming each offending key. */
function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

/**
 * Builds a model's discrete noise table from its scheduler_config.json (docs/samplers.md §1.1).
 *
 * ᾱ comes from, in order of precedence, `alphas_cumprod`, `trained_betas`, or `beta_schedule`
 * (scaled_linear, linear, squaredcos_cap_v2) with optional zero-terminal-SNR rescaling; all of it
 * in float64. σ_t = sqrt((1 − ᾱ_t)/ᾱ_t) is then rounded to float32 with Math.fround, as ComfyUI
 * stores its table (comfy/model_sampling.py `ModelSamplingDiscrete`), so σ_min/σ_max of the SD1.5
 * config are 0.029167158… and 14.614641189….
 *
 * @param config parsed JSON of scheduler_config.json (validated here with SchedulerConfigSchema)
 * @returns the model schedule: ᾱ (float64), ascending float32-rounded σ table, its ends,
 *   numTrainTimesteps, predictionType, stepsOffset, timestepSpacing
 * @throws RangeError naming the key when the config is invalid, or when the resulting table is
 *   not usable (ᾱ outside (0, 1], σ not strictly increasing, alphas_cumprod length ≠ num_train_timesteps)
 */
export function modelScheduleFromConfig(config: unknown): ModelSchedule {
  const parsed = SchedulerConfigSchema.safeParse(config);
  if (!parsed.success) throw new RangeError(`invalid scheduler config: ${describeIssues(parsed.error)}`);
  const c = parsed.data;
  const T = c.num_train_timesteps;

  let alphasCumprod: Float64Array;
  if (c.alphas_cumprod) {
    if (c.alphas_cumprod.length !== T) {
      throw new RangeError(`invalid scheduler config: alphas_cumprod has ${c.alphas_cumprod.length} entries, num_train_timesteps is ${T}`);
    }
    alphasCumprod = Float64Array.from(c.alphas_cumprod);
  } else {
    let betas: Float64Array;
    if (c.trained_betas) {
      if (c.trained_betas.length !== T) {
        throw new RangeError(`invalid scheduler config: trained_betas has ${c.trained_betas.length} entries, num_train_timesteps is ${T}`);
      }
      betas = Float64Array.from(c.trained_betas);
    } else {
      betas = betasFor(c);
    }
    const bad = betas.findIndex((b) => !(b > 0 && b < 1));
    if (bad >= 0) throw new RangeError(`invalid scheduler config: beta[${bad}] = ${betas[bad]} is outside (0, 1)`);
    if (c.rescale_betas_zero_snr) betas = rescaleZeroTerminalSnr(betas);
    alphasCumprod = cumprodOfOneMinus(betas);
    if (c.rescale_betas_zero_snr) alphasCumprod[T - 1] = ZERO_SNR_LAST_ALPHA_CUMPROD;
  }

  const sigmas = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    const ac = alphasCumprod[t];
    if (!(ac > 0 && ac <= 1)) throw new RangeError(`invalid scheduler config: alphas_cumprod[${t}] = ${ac} is outside (0, 1]`);
    sigmas[t] = Math.fround(Math.sqrt((1 - ac) / ac));
    if (t > 0 && !(sigmas[t] > sigmas[t - 1])) {
      throw new RangeError(`invalid scheduler config: sigma is not strictly increasing at timestep ${t} (${sigmas[t - 1]} → ${sigmas[t]})`);
    }
  }
  if (!(sigmas[0] > 0)) throw new RangeError('invalid scheduler config: sigma at timestep 0 is 0 (alphas_cumprod[0] = 1)');

  return {
    alphasCumprod,
    sigmas,
    sigmaMin: sigmas[0],
    sigmaMax: sigmas[T - 1],
    numTrainTimesteps: T,
    predictionType: c.prediction_type,
    stepsOffset: c.steps_offset,
    timestepSpacing: c.timestep_spacing,
  };
}

/**
 * σ at a fractional training timestep: log σ interpolated linearly between ⌊t⌋ and ⌈t⌉
 * (docs/samplers.md §1.2; k-diffusion `DiscreteSchedule.t_to_sigma`, ComfyUI `ModelSamplingDiscrete.sigma`),
 * with t clamped to [0, numTrainTimesteps − 1]. Float64.
 * @param model the model schedule
 * @param t timestep (any finite number; clamped)
 * @throws RangeError when t is not finite
 */
export function timestepToSigma(model: ModelSchedule, t: number): number {
  if (!Number.isFinite(t)) throw new RangeError(`timestep must be a finite number, got ${t}`);
  const s = model.sigmas;
  const tc = Math.min(Math.max(t, 0), s.length - 1);
  const lo = Math.floor(tc);
  const hi = Math.ceil(tc);
  const w = tc - lo;
  if (w === 0) return s[lo];
  return Math.exp((1 - w) * Math.log(s[lo]) + w * Math.log(s[hi]));
}

/**
 * Fractional training timestep of a σ, the inverse of {@link timestepToSigma} (docs/samplers.md §1.2;
 * k-diffusion `DiscreteSchedule.sigma_to_t`, stable-diffusion.cpp `sigma_to_t`): `lo` is the last
 * index with σ_lo ≤ σ (at most T−2), `w = (ln σ_lo − ln σ)/(ln σ_lo − ln σ_{lo+1})` clamped to
 * [0, 1], t = lo + w. So σ ≤ σ_min gives 0 (σ = 0 included) and σ ≥ σ_max gives T−1.
 * A model with an int64 timestep input takes Math.round of the result, which is the nearest table
 * index in log σ (what k-diffusion's `quantize` and ComfyUI's `timestep()` return).
 * @param model the model schedule
 * @param sigma noise level ≥ 0
 * @returns t in [0, numTrainTimesteps − 1], float64
 * @throws RangeError when sigma is NaN or negative
 */
export function sigmaToTimestep(model: ModelSchedule, sigma: number): number {
  if (!(sigma >= 0)) throw new RangeError(`sigma must be a number ≥ 0, got ${sigma}`);
  const s = model.sigmas;
  const n = s.length;
  if (sigma <= s[0]) return 0;
  if (sigma >= s[n - 1]) return n - 1;
  // Binary search for the last lo with s[lo] ≤ sigma; here s[0] < sigma < s[n−1], so lo ∈ [0, n−2].
  let lo = 0;
  let hi = n - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (s[mid] <= sigma) lo = mid;
    else hi = mid;
  }
  const lnLo = Math.log(s[lo]);
  const w = (lnLo - Math.log(sigma)) / (lnLo - Math.log(s[lo + 1]));
  return lo + Math.min(Math.max(w, 0), 1);
}
