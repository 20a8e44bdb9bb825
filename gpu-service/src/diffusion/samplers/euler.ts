/**
 * Euler's method on the probability-flow ODE dx/dσ = (x − D(x, σ))/σ (docs/samplers.md §2.1; Karras et al.
 * 2022, Algorithm 2 with churn; k-diffusion `sample_euler`). ComfyUI's `ddim` is this sampler.
 */
import type { Tensor } from '../tensor';
import { applyChurn } from './churn';
import { callDenoiser, readSigmas, reportStep, throwIfAborted } from './sampler-loop';
import { addScaled, copyTensor, toDerivative } from './tensor-ops';
import type { Denoiser, NoiseSource, SamplerOptions } from './types';

/**
 * x ← x + (σ_{i+1} − σ̂_i)·d(x, σ̂_i) for every step. Deterministic (the noise source is never called);
 * NFE = N. Reads s_churn/s_tmin/s_tmax/s_noise/randn (churn, default off), signal, onStep.
 * x: flat latents [B, C, H, W] (Float32Array or Float64Array); returns a new tensor of the same kind.
 * @throws RangeError for invalid sigmas; the signal's reason when aborted.
 */
export async function sampleEuler(
  denoise: Denoiser,
  xInit: Tensor,
  sigmasIn: ArrayLike<number>,
  _noise: NoiseSource,
  options: SamplerOptions = {},
): Promise<Tensor> {
  const sigmas = readSigmas(sigmasIn);
  const n = sigmas.length - 1;
  let x = copyTensor(xInit);
  for (let i = 0; i < n; i++) {
    throwIfAborted(options.signal);
    const churned = applyChurn(x, sigmas[i], n, options);
    const sigmaHat = churned.sigmaHat;
    const { denoised } = await callDenoiser(denoise, churned.x, sigmaHat);
    const d = toDerivative(churned.x, denoised, sigmaHat);
    x = addScaled(churned.x, sigmas[i + 1] - sigmaHat, d);
    await reportStep(options, { i, total: n, sigma: sigmas[i], sigmaNext: sigmas[i + 1], x, denoised });
  }
  return x;
}
