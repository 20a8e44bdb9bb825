/**
 * Ancestral DPM-Solver-2-style midpoint sampler (docs/samplers.md §2.2; k-diffusion `sample_dpm_2_ancestral`).
 */
import type { Tensor } from '../tensor';
import { ancestralStep } from './ancestral-step';
import { callDenoiser, drawsNoise, readSigmas, reportStep, throwIfAborted } from './sampler-loop';
import { addScaled, copyTensor, toDerivative } from './tensor-ops';
import type { Denoiser, NoiseSource, SamplerOptions } from './types';

/**
 * d = d(x, σ_i), (σ_d, σ_u) = split(σ_i, σ_{i+1}, η). If σ_d = 0: Euler to 0, no noise. Else
 * σ_m = sqrt(σ_i σ_d), x̃ = x + (σ_m − σ_i)d, x ← x + (σ_d − σ_i)·d(x̃, σ_m), then
 * x ← x + s_noise·σ_u·noise(σ_i, σ_{i+1}). NFE 2N − 1, N − 1 noise calls at η = 1.
 * Reads eta (default 1), s_noise, signal, onStep.
 * @throws RangeError for invalid sigmas; the signal's reason when aborted.
 */
export async function sampleDpm2Ancestral(
  denoise: Denoiser,
  xInit: Tensor,
  sigmasIn: ArrayLike<number>,
  noise: NoiseSource,
  options: SamplerOptions = {},
): Promise<Tensor> {
  const sigmas = readSigmas(sigmasIn);
  const n = sigmas.length - 1;
  const eta = options.eta ?? 1;
  const sNoise = options.s_noise ?? 1;
  let x = copyTensor(xInit);
  for (let i = 0; i < n; i++) {
    throwIfAborted(options.signal);
    const sigma = sigmas[i];
    const sigmaNext = sigmas[i + 1];
    const { denoised } = await callDenoiser(denoise, x, sigma);
    const { sigmaDown, sigmaUp } = ancestralStep(sigma, sigmaNext, eta);
    const d = toDerivative(x, denoised, sigma);
    if (sigmaDown === 0) {
      x = addScaled(x, sigmaDown - sigma, d);
    } else {
      const sigmaMid = Math.sqrt(sigma * sigmaDown);
      const x2 = addScaled(x, sigmaMid - sigma, d);
      const { denoised: denoised2 } = await callDenoiser(denoise, x2, sigmaMid);
      const d2 = toDerivative(x2, denoised2, sigmaMid);
      x = addScaled(x, sigmaDown - sigma, d2);
      const coefficient = sNoise * sigmaUp;
      if (drawsNoise(coefficient)) x = addScaled(x, coefficient, noise(sigma, sigmaNext));
    }
    await reportStep(options, { i, total: n, sigma, sigmaNext, x, denoised });
  }
  return x;
}
