/**
 * Latent-consistency sampling (Luo et al. 2023, "Latent Consistency Models", multistep consistency
 * sampling; ComfyUI `sample_lcm`; docs/samplers.md §2.2): jump to the x0 estimate, re-noise to σ_{i+1}.
 */
import type { Tensor } from '../tensor';
import { callDenoiser, drawsNoise, readSigmas, reportStep, throwIfAborted } from './sampler-loop';
import { addScaled, cloneAs, copyTensor } from './tensor-ops';
import type { Denoiser, NoiseSource, SamplerOptions } from './types';

/**
 * x ← D(x, σ_i); if σ_{i+1} > 0: x ← x + s_noise·σ_{i+1}·noise(σ_i, σ_{i+1}). NFE N, N − 1 noise calls.
 * Reads s_noise (default 1), signal, onStep.
 * @throws RangeError for invalid sigmas; the signal's reason when aborted.
 */
export async function sampleLcm(
  denoise: Denoiser,
  xInit: Tensor,
  sigmasIn: ArrayLike<number>,
  noise: NoiseSource,
  options: SamplerOptions = {},
): Promise<Tensor> {
  const sigmas = readSigmas(sigmasIn);
  const n = sigmas.length - 1;
  const sNoise = options.s_noise ?? 1;
  let x = copyTensor(xInit);
  for (let i = 0; i < n; i++) {
    throwIfAborted(options.signal);
    const sigma = sigmas[i];
    const sigmaNext = sigmas[i + 1];
    const { denoised } = await callDenoiser(denoise, x, sigma);
    x = cloneAs(x, denoised);
    const coefficient = sNoise * sigmaNext;
    if (sigmaNext > 0 && drawsNoise(coefficient)) x = addScaled(x, coefficient, noise(sigma, sigmaNext));
    await reportStep(options, { i, total: n, sigma, sigmaNext, x, denoised });
  }
  return x;
}
