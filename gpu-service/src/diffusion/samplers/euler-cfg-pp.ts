/**
 * CFG++ Euler samplers (Chung et al. 2024, "CFG++: Manifold-constrained Classifier Free Guidance";
 * ComfyUI `sample_euler_cfg_pp` / `sample_euler_ancestral_cfg_pp`; docs/samplers.md §2.2): the step re-noises
 * the guided x0 estimate D_i along the *unconditional* direction (x − U_i)/σ_i.
 */
import type { Tensor } from '../tensor';
import { ancestralStep } from './ancestral-step';
import { callDenoiser, drawsNoise, readSigmas, reportStep, throwIfAborted } from './sampler-loop';
import { addScaled, cloneAs, copyTensor, lincomb2 } from './tensor-ops';
import type { Denoiser, NoiseSource, SamplerOptions } from './types';

/**
 * If σ_{i+1} = 0: x ← D_i. Else (σ_d, σ_u) = split(σ_i, σ_{i+1}, η), x ← D_i + σ_d·(x − U_i)/σ_i and,
 * if η > 0, x ← x + s_noise·σ_u·noise(σ_i, σ_{i+1}). U_i is the denoiser's `uncond` output (falls back to
 * D_i when absent, which makes this euler / euler_ancestral exactly). NFE N.
 * Reads eta (default 1 — use sampleEulerCfgPp for η = 0), s_noise, signal, onStep.
 * @throws RangeError for invalid sigmas; the signal's reason when aborted.
 */
export async function sampleEulerAncestralCfgPp(
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
    const { denoised, uncond } = await callDenoiser(denoise, x, sigma);
    if (sigmaNext === 0) {
      x = cloneAs(x, denoised);
    } else {
      const { sigmaDown, sigmaUp } = ancestralStep(sigma, sigmaNext, eta);
      const u = uncond ?? denoised;
      const ratio = sigmaDown / sigma;
      // D + σ_d (x − U)/σ
      const next = lincomb2(ratio, x, -ratio, u);
      for (let k = 0; k < next.length; k++) next[k] += denoised[k];
      x = next;
      const coefficient = sNoise * sigmaUp;
      if (drawsNoise(coefficient)) x = addScaled(x, coefficient, noise(sigma, sigmaNext));
    }
    await reportStep(options, { i, total: n, sigma, sigmaNext, x, denoised });
  }
  return x;
}

/**
 * euler_cfg_pp: the η = 0 case of sampleEulerAncestralCfgPp (never calls the noise source; any eta in
 * options is ignored). NFE N. Deterministic.
 * @throws RangeError for invalid sigmas; the signal's reason when aborted.
 */
export async function sampleEulerCfgPp(
  denoise: Denoiser,
  xInit: Tensor,
  sigmasIn: ArrayLike<number>,
  noise: NoiseSource,
  options: SamplerOptions = {},
): Promise<Tensor> {
  return sampleEulerAncestralCfgPp(denoise, xInit, sigmasIn, noise, { ...options, eta: 0 });
}
