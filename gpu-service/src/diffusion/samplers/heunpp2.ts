/**
 * Heun++ ("heunpp2", ComfyUI `sample_heunpp2`, from Carzit/sd-webui-samplers-scheduler; docs/samplers.md
 * §2.1): a three-stage look-ahead average with heuristic σ-dependent weights. It is consistent (weights
 * sum to 1, so it converges at first order) but is not Heun: its weights fade to Euler as σ → 0.
 */
import type { Tensor } from '../tensor';
import { callDenoiser, readSigmas, reportStep, throwIfAborted } from './sampler-loop';
import { addScaled, copyTensor, lincomb, toDerivative } from './tensor-ops';
import type { Denoiser, NoiseSource, SamplerOptions } from './types';

/**
 * With σ_0 the first and σ_end the last sigma, d = d(x, σ_i), Δ = σ_{i+1} − σ_i:
 * σ_{i+1} = σ_end → Euler; σ_{i+2} = σ_end → x₂ = x + Δd, w₂ = σ_{i+1}/(2σ_0),
 * x ← x + Δ((1−w₂)d + w₂ d(x₂, σ_{i+1})); otherwise also x₃ = x₂ + (σ_{i+2} − σ_{i+1})d₂,
 * w₂ = σ_{i+1}/(3σ_0), w₃ = σ_{i+2}/(3σ_0), x ← x + Δ((1−w₂−w₃)d + w₂d₂ + w₃d₃).
 * NFE 3N − 3 for N ≥ 2. Deterministic; no churn. Reads signal, onStep.
 * @throws RangeError for invalid sigmas; the signal's reason when aborted.
 */
export async function sampleHeunpp2(
  denoise: Denoiser,
  xInit: Tensor,
  sigmasIn: ArrayLike<number>,
  _noise: NoiseSource,
  options: SamplerOptions = {},
): Promise<Tensor> {
  const sigmas = readSigmas(sigmasIn);
  const n = sigmas.length - 1;
  const sigmaFirst = sigmas[0];
  const sigmaEnd = sigmas[n];
  let x = copyTensor(xInit);
  for (let i = 0; i < n; i++) {
    throwIfAborted(options.signal);
    const { denoised } = await callDenoiser(denoise, x, sigmas[i]);
    const d = toDerivative(x, denoised, sigmas[i]);
    const dt = sigmas[i + 1] - sigmas[i];
    if (sigmas[i + 1] === sigmaEnd) {
      x = addScaled(x, dt, d);
    } else {
      const x2 = addScaled(x, dt, d);
      const { denoised: denoised2 } = await callDenoiser(denoise, x2, sigmas[i + 1]);
      const d2 = toDerivative(x2, denoised2, sigmas[i + 1]);
      if (sigmas[i + 2] === sigmaEnd) {
        const w2 = sigmas[i + 1] / (2 * sigmaFirst);
        x = lincomb([1, dt * (1 - w2), dt * w2], [x, d, d2]);
      } else {
        const x3 = addScaled(x2, sigmas[i + 2] - sigmas[i + 1], d2);
        const { denoised: denoised3 } = await callDenoiser(denoise, x3, sigmas[i + 2]);
        const d3 = toDerivative(x3, denoised3, sigmas[i + 2]);
        const w2 = sigmas[i + 1] / (3 * sigmaFirst);
        const w3 = sigmas[i + 2] / (3 * sigmaFirst);
        x = lincomb([1, dt * (1 - w2 - w3), dt * w2, dt * w3], [x, d, d2, d3]);
      }
    }
    await reportStep(options, { i, total: n, sigma: sigmas[i], sigmaNext: sigmas[i + 1], x, denoised });
  }
  return x;
}
