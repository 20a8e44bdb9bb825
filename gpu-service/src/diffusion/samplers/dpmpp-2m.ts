/**
 * DPM-Solver++(2M), the multistep second-order data-prediction exponential integrator (Lu et al. 2022,
 * "DPM-Solver++", Algorithm 2; k-diffusion `sample_dpmpp_2m`; docs/samplers.md §2.4), and stable-diffusion.cpp's
 * `dpm++2mv2` variant.
 */
import type { Tensor } from '../tensor';
import { callDenoiser, readSigmas, reportStep, throwIfAborted } from './sampler-loop';
import { cloneAs, copyTensor, lincomb3, lincomb2 } from './tensor-ops';
import type { Denoiser, NoiseSource, SamplerOptions } from './types';

type Flavor = 'v1' | 'v2';

async function sampleDpmpp2mFlavor(
  denoise: Denoiser,
  xInit: Tensor,
  sigmasIn: ArrayLike<number>,
  options: SamplerOptions,
  flavor: Flavor,
): Promise<Tensor> {
  const sigmas = readSigmas(sigmasIn);
  const n = sigmas.length - 1;
  let x = copyTensor(xInit);
  let oldDenoised: Tensor | undefined;
  for (let i = 0; i < n; i++) {
    throwIfAborted(options.signal);
    const sigma = sigmas[i];
    const sigmaNext = sigmas[i + 1];
    const { denoised } = await callDenoiser(denoise, x, sigma);
    if (sigmaNext === 0) {
      x = cloneAs(x, denoised);
    } else {
      const h = Math.log(sigma / sigmaNext);
      const ratio = sigmaNext / sigma;
      if (!oldDenoised) {
        x = lincomb2(ratio, x, -Math.expm1(-h), denoised);
      } else {
        const hLast = Math.log(sigmas[i - 1] / sigma);
        let r: number;
        let phi: number;
        if (flavor === 'v1') {
          r = hLast / h;
          phi = -Math.expm1(-h);
        } else {
          const hMin = Math.min(hLast, h);
          const hMax = Math.max(hLast, h);
          r = hMax / hMin;
          phi = -Math.expm1(-(hMin + hMax) / 2);
        }
        // x ← (σ'/σ)x + φ·((1 + 1/(2r))D_i − (1/(2r))D_{i−1})
        const c = 1 / (2 * r);
        x = lincomb3(ratio, x, phi * (1 + c), denoised, -phi * c, oldDenoised);
      }
    }
    oldDenoised = denoised;
    await reportStep(options, { i, total: n, sigma, sigmaNext, x, denoised });
  }
  return x;
}

/**
 * dpmpp_2m: h = ln(σ_i/σ_{i+1}); first step x ← (σ_{i+1}/σ_i)x − expm1(−h)D_i; later steps use
 * D̄ = (1 + 1/(2r))D_i − (1/(2r))D_{i−1}, r = h_{i−1}/h_i; the step to σ = 0 is x ← D_i. NFE N;
 * deterministic, second order.
 * @throws RangeError for invalid sigmas; the signal's reason when aborted.
 */
export async function sampleDpmpp2m(
  denoise: Denoiser,
  xInit: Tensor,
  sigmasIn: ArrayLike<number>,
  _noise: NoiseSource,
  options: SamplerOptions = {},
): Promise<Tensor> {
  return sampleDpmpp2mFlavor(denoise, xInit, sigmasIn, options, 'v1');
}

/**
 * dpmpp_2m_v2 (sd.cpp `dpm++2mv2`): as dpmpp_2m, but non-first, non-final steps use r = h_max/h_min and
 * the factor e^{−(h_min+h_max)/2} − 1 (h_min/h_max of h_{i−1}, h_i). Equals dpmpp_2m on log-uniform
 * (exponential) grids; on other grids it is not a consistent integrator (reproduced as specified).
 * @throws RangeError for invalid sigmas; the signal's reason when aborted.
 */
export async function sampleDpmpp2mV2(
  denoise: Denoiser,
  xInit: Tensor,
  sigmasIn: ArrayLike<number>,
  _noise: NoiseSource,
  options: SamplerOptions = {},
): Promise<Tensor> {
  return sampleDpmpp2mFlavor(denoise, xInit, sigmasIn, options, 'v2');
}
