/**
 * DDPM ancestral sampling (Ho et al. 2020, eq. 6–7 posterior q(x_{t−1} | x_t, x_0)) written in VP form on
 * a σ grid (docs/samplers.md §2.2; ComfyUI `sample_ddpm` / `DDPMSampler_step`). Algebraically identical to
 * euler_ancestral with η = 1, s_noise = 1; kept as its own formula so the identity is tested.
 */
import type { Tensor } from '../tensor';
import { callDenoiser, drawsNoise, readSigmas, reportStep, throwIfAborted } from './sampler-loop';
import { allocLike, copyTensor } from './tensor-ops';
import type { Denoiser, NoiseSource, SamplerOptions } from './types';

/**
 * With ᾱ = 1/(σ_i²+1), ᾱ' = 1/(σ_{i+1}²+1), a = ᾱ/ᾱ', ε = (x − D_i)/σ_i, x_vp = x/sqrt(1+σ_i²):
 * μ = (x_vp − (1−a)·ε/sqrt(1−ᾱ))/sqrt(a); if σ_{i+1} > 0:
 * x ← (μ + s_noise·sqrt((1−a)(1−ᾱ')/(1−ᾱ))·noise(σ_i, σ_{i+1}))·sqrt(1+σ_{i+1}²), else x ← μ.
 * NFE N, N − 1 noise calls. Reads s_noise (default 1; ComfyUI has none), signal, onStep. eta is ignored.
 * @throws RangeError for invalid sigmas; the signal's reason when aborted.
 */
export async function sampleDdpm(
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
    const alphaCumprod = 1 / (sigma * sigma + 1);
    const alphaCumprodPrev = 1 / (sigmaNext * sigmaNext + 1);
    const a = alphaCumprod / alphaCumprodPrev;
    const inScale = 1 / Math.sqrt(1 + sigma * sigma);
    const epsScale = (1 - a) / Math.sqrt(1 - alphaCumprod);
    const muScale = 1 / Math.sqrt(a);
    const next = allocLike(x);
    const noiseCoefficient = sNoise * Math.sqrt(((1 - a) * (1 - alphaCumprodPrev)) / (1 - alphaCumprod));
    const eps = sigmaNext > 0 && drawsNoise(noiseCoefficient) ? noise(sigma, sigmaNext) : undefined;
    const outScale = sigmaNext > 0 ? Math.sqrt(1 + sigmaNext * sigmaNext) : 1;
    for (let k = 0; k < next.length; k++) {
      const e = (x[k] - denoised[k]) / sigma;
      let mu = (x[k] * inScale - epsScale * e) * muScale;
      if (eps) mu += noiseCoefficient * eps[k];
      next[k] = mu * outScale;
    }
    x = next;
    await reportStep(options, { i, total: n, sigma, sigmaNext, x, denoised });
  }
  return x;
}
