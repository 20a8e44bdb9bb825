/**
 * Plumbing shared by every sampler's loop: sigma validation, abort checks, the guarded denoiser call
 * and the per-step callback. None of it holds state.
 */
import type { Tensor } from '../tensor';
import type { Denoiser, DenoiserOutput, SamplerOptions, StepInfo } from './types';

/**
 * Copy sigmas into a Float64Array after checking the sampler contract: at least one value, all finite,
 * strictly decreasing, all positive except possibly the last, which may be 0.
 * @throws RangeError naming the offending index.
 */
export function readSigmas(sigmas: ArrayLike<number>): Float64Array {
  const s = Float64Array.from(sigmas as ArrayLike<number>);
  if (s.length === 0) throw new RangeError('sigmas must not be empty');
  for (let i = 0; i < s.length; i++) {
    if (!Number.isFinite(s[i]) || s[i] < 0) throw new RangeError(`sigmas[${i}] = ${s[i]} is not a finite non-negative number`);
    if (s[i] === 0 && i !== s.length - 1) throw new RangeError(`sigmas[${i}] = 0 before the last entry`);
    if (i > 0 && !(s[i] < s[i - 1])) throw new RangeError(`sigmas must be strictly decreasing (sigmas[${i}] = ${s[i]} ≥ sigmas[${i - 1}] = ${s[i - 1]})`);
  }
  return s;
}

/** Throw the signal's reason (or Error('aborted')) when it is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason ?? new Error('aborted');
}

/**
 * Call the denoiser at σ > 0 and check its output length.
 * @throws RangeError if sigma is not positive and finite (a sampler bug: the denoiser is never called at 0);
 *   Error if the denoiser returns a tensor of the wrong length.
 */
export async function callDenoiser(denoise: Denoiser, x: Tensor, sigma: number): Promise<DenoiserOutput> {
  if (!(sigma > 0) || !Number.isFinite(sigma)) throw new RangeError(`denoiser called at sigma = ${sigma}`);
  const out = await denoise(x, sigma);
  if (out.denoised.length !== x.length) {
    throw new Error(`denoiser returned ${out.denoised.length} values for a tensor of ${x.length}`);
  }
  if (out.uncond && out.uncond.length !== x.length) {
    throw new Error(`denoiser returned an uncond tensor of ${out.uncond.length} values for ${x.length}`);
  }
  return out;
}

/** Await options.onStep (if any) with the step's info. */
export async function reportStep(options: SamplerOptions, info: StepInfo): Promise<void> {
  if (options.onStep) await options.onStep(info);
}

/** The noise coefficient only draws when it is non-zero (docs/samplers.md §0: zero terms never call noise()). */
export function drawsNoise(coefficient: number): boolean {
  return coefficient !== 0 && Number.isFinite(coefficient);
}
