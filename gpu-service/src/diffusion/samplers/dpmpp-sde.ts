/**
 * DPM-Solver++ stochastic ("DPM++ SDE"; k-diffusion `sample_dpmpp_sde`, after Lu et al. 2022
 * "DPM-Solver++" with ancestral noise at both stages; docs/samplers.md §2.4). r = 1/2 by default.
 */
import type { Tensor } from '../tensor';
import { ancestralStep } from './ancestral-step';
import { callDenoiser, drawsNoise, readSigmas, reportStep, throwIfAborted } from './sampler-loop';
import { addScaled, cloneAs, copyTensor, lincomb2, lincomb3 } from './tensor-ops';
import type { Denoiser, NoiseSource, SamplerOptions } from './types';

/**
 * If σ_{i+1} = 0: x ← D_i. Else h = ln(σ_i/σ_{i+1}), σ_s = σ_i e^{−rh}:
 * 1. (σ_a, σ_ua) = split(σ_i, σ_s, η); u = (σ_a/σ_i)x + (1 − σ_a/σ_i)D_i + s_noise σ_ua noise(σ_i, σ_s); D₂ = D(u, σ_s).
 * 2. (σ_b, σ_ub) = split(σ_i, σ_{i+1}, η); D̄ = (1 − 1/(2r))D_i + (1/(2r))D₂;
 *    x ← (σ_b/σ_i)x + (1 − σ_b/σ_i)D̄ + s_noise σ_ub noise(σ_i, σ_{i+1}).
 * NFE 2N − 1; 2(N − 1) noise calls, in the order (σ_i, σ_s), (σ_i, σ_{i+1}); none when η or s_noise is 0.
 * Reads eta (default 1), s_noise, variant.r (default '0.5'), signal, onStep. Defaults to Brownian-tree noise
 * in the registry.
 * @throws RangeError for invalid sigmas or r ∉ (0, 1]; the signal's reason when aborted.
 */
export async function sampleDpmppSde(
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
  const r = Number(options.variant?.r ?? 0.5);
  if (!(r > 0 && r <= 1)) throw new RangeError(`dpmpp_sde r must be in (0, 1], got ${options.variant?.r}`);
  const fac = 1 / (2 * r);
  let x = copyTensor(xInit);
  for (let i = 0; i < n; i++) {
    throwIfAborted(options.signal);
    const sigma = sigmas[i];
    const sigmaNext = sigmas[i + 1];
    const { denoised } = await callDenoiser(denoise, x, sigma);
    if (sigmaNext === 0) {
      x = cloneAs(x, denoised);
    } else {
      const h = Math.log(sigma / sigmaNext);
      const sigmaS = r === 0.5 ? Math.sqrt(sigma * sigmaNext) : sigma * Math.exp(-r * h);
      // Stage 1
      const a = ancestralStep(sigma, sigmaS, eta);
      const ra = a.sigmaDown / sigma;
      let u = lincomb2(ra, x, 1 - ra, denoised);
      const ca = sNoise * a.sigmaUp;
      if (drawsNoise(ca)) u = addScaled(u, ca, noise(sigma, sigmaS));
      const { denoised: denoised2 } = await callDenoiser(denoise, u, sigmaS);
      // Stage 2
      const b = ancestralStep(sigma, sigmaNext, eta);
      const rb = b.sigmaDown / sigma;
      x = lincomb3(rb, x, (1 - rb) * (1 - fac), denoised, (1 - rb) * fac, denoised2);
      const cb = sNoise * b.sigmaUp;
      if (drawsNoise(cb)) x = addScaled(x, cb, noise(sigma, sigmaNext));
    }
    await reportStep(options, { i, total: n, sigma, sigmaNext, x, denoised });
  }
  return x;
}
