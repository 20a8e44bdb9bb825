/**
 * The tiny model's training noise schedule in float64, from the same numbers written to
 * scheduler/scheduler_config.json ("scaled_linear", TINY_BETA_START..TINY_BETA_END, 1000 steps).
 * Formulas: docs/samplers.md §1.1 (= diffusers' scaled_linear betas, ᾱ = Π(1 − β),
 * σ = sqrt((1 − ᾱ)/ᾱ)); fractional timesteps interpolate log σ (docs/samplers.md §1.2).
 */
import { TINY_BETA_END, TINY_BETA_START, TINY_NUM_TRAIN_TIMESTEPS } from './constants';

/** alphas_cumprod ᾱ_t for t = 0 … 999 (float64, length TINY_NUM_TRAIN_TIMESTEPS). */
export function tinyAlphasCumprod(): Float64Array {
  const n = TINY_NUM_TRAIN_TIMESTEPS;
  const a = Math.sqrt(TINY_BETA_START);
  const b = Math.sqrt(TINY_BETA_END);
  const out = new Float64Array(n);
  let prod = 1;
  for (let i = 0; i < n; i++) {
    const beta = (a + (i / (n - 1)) * (b - a)) ** 2;
    prod *= 1 - beta;
    out[i] = prod;
  }
  return out;
}

/** σ_t = sqrt((1 − ᾱ_t)/ᾱ_t) for t = 0 … 999 (float64). */
export function tinySigmas(): Float64Array {
  return tinyAlphasCumprod().map((ac) => Math.sqrt((1 - ac) / ac));
}

/**
 * σ(t) for a fractional timestep: log σ interpolated linearly between ⌊t⌋ and ⌈t⌉, t clamped
 * to [0, 999] (docs/samplers.md §1.2). For integer t it is exactly tinySigmas()[t].
 */
export function tinySigmaAt(t: number, sigmas: Float64Array = tinySigmas()): number {
  const tc = Math.min(sigmas.length - 1, Math.max(0, t));
  const lo = Math.floor(tc);
  const hi = Math.ceil(tc);
  const w = tc - lo;
  return Math.exp((1 - w) * Math.log(sigmas[lo]) + w * Math.log(sigmas[hi]));
}
