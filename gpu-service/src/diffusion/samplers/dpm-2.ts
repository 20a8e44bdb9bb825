/**
 * DPM-Solver-2-inspired midpoint sampler (docs/samplers.md §2.1; k-diffusion `sample_dpm_2`, after Lu et al.
 * 2022 "DPM-Solver", with Karras et al. 2022 churn). The midpoint is geometric in σ (= midpoint in λ).
 */
import type { Tensor } from '../tensor';
import { applyChurn } from './churn';
import { callDenoiser, readSigmas, reportStep, throwIfAborted } from './sampler-loop';
import { addScaled, copyTensor, toDerivative } from './tensor-ops';
import type { Denoiser, NoiseSource, SamplerOptions } from './types';

/**
 * d = d(x, σ̂_i). If σ_{i+1} = 0: Euler. Else σ_m = sqrt(σ̂_i·σ_{i+1}), x̃ = x + (σ_m − σ̂_i)·d,
 * x ← x + (σ_{i+1} − σ̂_i)·d(x̃, σ_m). NFE 2N − 1. Deterministic; churn options as euler.
 * Usually run on a schedule with its penultimate sigma discarded (docs/samplers.md §1.3, done by the job layer).
 * @throws RangeError for invalid sigmas; the signal's reason when aborted.
 */
export async function sampleDpm2(
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
    if (sigmas[i + 1] === 0) {
      x = addScaled(xHat, sigmas[i + 1] - sigmaHat, d);
    } else {
      const sigmaMid = Math.sqrt(sigmaHat * sigmas[i + 1]);
      const x2 = addScaled(xHat, sigmaMid - sigmaHat, d);
      const { denoised: denoised2 } = await callDenoiser(denoise, x2, sigmaMid);
      const d2 = toDerivative(x2, denoised2, sigmaMid);
      x = addScaled(xHat, sigmas[i + 1] - sigmaHat, d2);
    }
    await reportStep(options, { i, total: n, sigma: sigmas[i], sigmaNext: sigmas[i + 1], x, denoised });
  }
  return x;
}
