/**
 * DPM-Solver++(2M) SDE (Lu et al. 2022, "DPM-Solver++", SDE variant; k-diffusion `sample_dpmpp_2m_sde`;
 * docs/samplers.md §2.4), with the 'midpoint' (default) or 'heun' second-order correction.
 */
import type { Tensor } from '../tensor';
import { callDenoiser, drawsNoise, readSigmas, reportStep, throwIfAborted } from './sampler-loop';
import { addScaled, cloneAs, copyTensor, lincomb2, lincomb3 } from './tensor-ops';
import type { Denoiser, NoiseSource, SamplerOptions } from './types';

/**
 * If σ_{i+1} = 0: x ← D_i. Else h = ln(σ_i/σ_{i+1}), H = (1+η)h,
 * x ← (σ_{i+1}/σ_i)e^{−ηh}x + (1 − e^{−H})D_i; with a previous D (r = h_prev/h):
 * midpoint x += ½(1 − e^{−H})(D_i − D_{i−1})/r, heun x += (1 − (1 − e^{−H})/H)(D_i − D_{i−1})/r;
 * if η > 0: x += s_noise σ_{i+1} sqrt(1 − e^{−2ηh}) noise(σ_i, σ_{i+1}).
 * NFE N, N − 1 noise calls at η = 1. Reads eta (default 1), s_noise, variant.solver_type
 * ('midpoint' | 'heun', default 'midpoint'), signal, onStep.
 * @throws RangeError for invalid sigmas or solver_type; the signal's reason when aborted.
 */
export async function sampleDpmpp2mSde(
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
  const solverType = options.variant?.solver_type ?? 'midpoint';
  if (solverType !== 'midpoint' && solverType !== 'heun') {
    throw new RangeError(`dpmpp_2m_sde solver_type must be 'midpoint' or 'heun', got '${solverType}'`);
  }
  let x = copyTensor(xInit);
  let oldDenoised: Tensor | undefined;
  let hLast: number | undefined;
  for (let i = 0; i < n; i++) {
    throwIfAborted(options.signal);
    const sigma = sigmas[i];
    const sigmaNext = sigmas[i + 1];
    const { denoised } = await callDenoiser(denoise, x, sigma);
    if (sigmaNext === 0) {
      x = cloneAs(x, denoised);
    } else {
      const h = Math.log(sigma / sigmaNext);
      const etaH = eta * h;
      const bigH = h + etaH;
      const phi1 = -Math.expm1(-bigH); // 1 − e^{−H}
      const decay = (sigmaNext / sigma) * Math.exp(-etaH);
      if (oldDenoised && hLast !== undefined) {
        const r = hLast / h;
        const c = solverType === 'heun' ? (phi1 / -bigH + 1) / r : (0.5 * phi1) / r;
        x = lincomb3(decay, x, phi1 + c, denoised, -c, oldDenoised);
      } else {
        x = lincomb2(decay, x, phi1, denoised);
      }
      const coefficient = sNoise * sigmaNext * Math.sqrt(-Math.expm1(-2 * etaH));
      if (drawsNoise(coefficient)) x = addScaled(x, coefficient, noise(sigma, sigmaNext));
      hLast = h;
    }
    oldDenoised = denoised;
    await reportStep(options, { i, total: n, sigma, sigmaNext, x, denoised });
  }
  return x;
}
