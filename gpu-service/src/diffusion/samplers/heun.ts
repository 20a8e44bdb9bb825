/**
 * Heun's second-order method (explicit trapezoid) on the probability-flow ODE (docs/samplers.md §2.1;
 * Karras et al. 2022, Algorithm 1/2; k-diffusion `sample_heun`).
 */
import type { Tensor } from '../tensor';
import { applyChurn } from './churn';
import { callDenoiser, readSigmas, reportStep, throwIfAborted } from './sampler-loop';
import { addScaled, copyTensor, lincomb3, toDerivative } from './tensor-ops';
import type { Denoiser, NoiseSource, SamplerOptions } from './types';

/**
 * d = d(x, σ̂_i); x̃ = x + (σ_{i+1} − σ̂_i)·d; if σ_{i+1} = 0 then x ← x̃ (Euler), else
 * x ← x + (σ_{i+1} − σ̂_i)·(d + d(x̃, σ_{i+1}))/2. NFE 2N − 1 when the last sigma is 0. Deterministic.
 * Reads churn options (default off), signal, onStep. Returns a new tensor of x's kind.
 * @throws RangeError for invalid sigmas; the signal's reason when aborted.
 */
export async function sampleHeun(
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
    const xHat = churned.x;
    const { denoised } = await callDenoiser(denoise, xHat, sigmaHat);
    const d = toDerivative(xHat, denoised, sigmaHat);
    const dt = sigmas[i + 1] - sigmaHat;
    if (sigmas[i + 1] === 0) {
      x = addScaled(xHat, dt, d);
    } else {
      const x2 = addScaled(xHat, dt, d);
      const { denoised: denoised2 } = await callDenoiser(denoise, x2, sigmas[i + 1]);
      const d2 = toDerivative(x2, denoised2, sigmas[i + 1]);
      x = lincomb3(1, xHat, dt / 2, d, dt / 2, d2);
    }
    await reportStep(options, { i, total: n, sigma: sigmas[i], sigmaNext: sigmas[i + 1], x, denoised });
  }
  return x;
}
