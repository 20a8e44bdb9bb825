/**
 * Ancestral Euler (docs/samplers.md §2.2; k-diffusion `sample_euler_ancestral`, the DDPM-style ancestral
 * step of Ho et al. 2020 written in σ): a deterministic Euler step down to σ_down, then fresh noise up
 * to σ_{i+1}.
 */
import type { Tensor } from '../tensor';
import { ancestralStep } from './ancestral-step';
import { callDenoiser, drawsNoise, readSigmas, reportStep, throwIfAborted } from './sampler-loop';
import { addScaled, copyTensor, lincomb2 } from './tensor-ops';
import type { Denoiser, NoiseSource, SamplerOptions } from './types';

/**
 * (σ_d, σ_u) = split(σ_i, σ_{i+1}, η); x ← D_i + (σ_d/σ_i)(x − D_i); if σ_{i+1} > 0 (and the coefficient is
 * non-zero) x ← x + s_noise·σ_u·noise(σ_i, σ_{i+1}). NFE N, N − 1 noise calls at the default η = 1.
 * Reads eta (default 1), s_noise (default 1), signal, onStep. Returns a new tensor of x's kind.
 * @throws RangeError for invalid sigmas; the signal's reason when aborted.
 */
export async function sampleEulerAncestral(
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
    // x + (σ_d − σ)(x − D)/σ = (σ_d/σ)·x + (1 − σ_d/σ)·D
    const ratio = sigmaDown / sigma;
    x = lincomb2(ratio, x, 1 - ratio, denoised);
    const coefficient = sNoise * sigmaUp;
    if (sigmaNext > 0 && drawsNoise(coefficient)) x = addScaled(x, coefficient, noise(sigma, sigmaNext));
    await reportStep(options, { i, total: n, sigma, sigmaNext, x, denoised });
  }
  return x;
}
