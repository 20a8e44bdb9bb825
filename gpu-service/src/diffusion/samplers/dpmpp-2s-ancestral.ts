/**
 * DPM-Solver++(2S), ancestral (docs/samplers.md §2.2; Lu et al. 2022 "DPM-Solver++", Algorithm 1 with a
 * single intermediate stage at the λ-midpoint; k-diffusion `sample_dpmpp_2s_ancestral`).
 */
import type { Tensor } from '../tensor';
import { ancestralStep } from './ancestral-step';
import { callDenoiser, drawsNoise, readSigmas, reportStep, throwIfAborted } from './sampler-loop';
import { addScaled, cloneAs, copyTensor, lincomb2 } from './tensor-ops';
import type { Denoiser, NoiseSource, SamplerOptions } from './types';

/**
 * (σ_d, σ_u) = split(σ_i, σ_{i+1}, η). If σ_d = 0: x ← D_i. Else h = ln(σ_i/σ_d), σ_s = sqrt(σ_i σ_d),
 * u = (σ_s/σ_i)x − expm1(−h/2)·D_i, x ← (σ_d/σ_i)x − expm1(−h)·D(u, σ_s). Then if σ_{i+1} > 0:
 * x ← x + s_noise·σ_u·noise(σ_i, σ_{i+1}). NFE 2N − 1, N − 1 noise calls at η = 1.
 * Reads eta (default 1), s_noise, signal, onStep.
 * @throws RangeError for invalid sigmas; the signal's reason when aborted.
 */
export async function sampleDpmpp2sAncestral(
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
    if (sigmaDown === 0) {
      x = cloneAs(x, denoised);
    } else {
      const h = Math.log(sigma / sigmaDown);
      const sigmaS = Math.sqrt(sigma * sigmaDown);
      const u = lincomb2(sigmaS / sigma, x, -Math.expm1(-h / 2), denoised);
      const { denoised: denoised2 } = await callDenoiser(denoise, u, sigmaS);
      x = lincomb2(sigmaDown / sigma, x, -Math.expm1(-h), denoised2);
    }
    const coefficient = sNoise * sigmaUp;
    if (sigmaNext > 0 && drawsNoise(coefficient)) x = addScaled(x, coefficient, noise(sigma, sigmaNext));
    await reportStep(options, { i, total: n, sigma, sigmaNext, x, denoised });
  }
  return x;
}
