/**
 * PLMS (Liu et al. 2022, "Pseudo Numerical Methods for Diffusion Models on Manifolds"; CompVis / A1111
 * `p_sample_plms`; docs/samplers.md §2.3), written in VE form on a σ grid: the DDIM step is Euler in σ, and the
 * ε it uses is a pseudo-improved-Euler average on the first step and AB2/AB3/AB4 of the ε history after.
 */
import type { Tensor } from '../tensor';
import { ADAMS_BASHFORTH_WEIGHTS } from './ipndm';
import { callDenoiser, readSigmas, reportStep, throwIfAborted } from './sampler-loop';
import { addScaled, copyTensor, lincomb, toDerivative } from './tensor-ops';
import type { Denoiser, NoiseSource, SamplerOptions } from './types';

/**
 * ε_i = d(x, σ_i). Step 0: ε' = (ε_0 + d(x + Δε_0, σ_1))/2 (skipped when σ_1 = 0: then ε' = ε_0);
 * step i ≥ 1: ε' = AB_{min(i+1, 4)} over ε_i, ε_{i−1}, … (the history holds the ε_i, not ε').
 * x ← x + (σ_{i+1} − σ_i)·ε'. NFE N + 1 for N ≥ 2; deterministic. (A1111 runs it on integer DDIM
 * timesteps and stops at σ(t=1); the name table pairs it with ddim_uniform, docs/samplers.md §3.3.)
 * @throws RangeError for invalid sigmas; the signal's reason when aborted.
 */
export async function samplePlms(
  denoise: Denoiser,
  xInit: Tensor,
  sigmasIn: ArrayLike<number>,
  _noise: NoiseSource,
  options: SamplerOptions = {},
): Promise<Tensor> {
  const sigmas = readSigmas(sigmasIn);
  const n = sigmas.length - 1;
  let x = copyTensor(xInit);
  const eps: Tensor[] = []; // newest last
  for (let i = 0; i < n; i++) {
    throwIfAborted(options.signal);
    const sigma = sigmas[i];
    const sigmaNext = sigmas[i + 1];
    const dt = sigmaNext - sigma;
    const { denoised } = await callDenoiser(denoise, x, sigma);
    const e = toDerivative(x, denoised, sigma);
    let ePrime: Tensor;
    if (eps.length === 0) {
      if (sigmaNext > 0) {
        const x2 = addScaled(x, dt, e);
        const { denoised: denoised2 } = await callDenoiser(denoise, x2, sigmaNext);
        ePrime = lincomb([0.5, 0.5], [e, toDerivative(x2, denoised2, sigmaNext)]);
      } else {
        ePrime = e;
      }
    } else {
      const order = Math.min(eps.length + 1, 4);
      const w = ADAMS_BASHFORTH_WEIGHTS[order - 1];
      const terms: Tensor[] = [e];
      for (let j = 1; j < order; j++) terms.push(eps[eps.length - j]);
      ePrime = lincomb(w as number[], terms);
    }
    eps.push(e);
    if (eps.length > 3) eps.shift();
    x = addScaled(x, dt, ePrime);
    await reportStep(options, { i, total: n, sigma, sigmaNext, x, denoised });
  }
  return x;
}
