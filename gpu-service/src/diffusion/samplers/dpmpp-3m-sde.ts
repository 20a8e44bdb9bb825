/**
 * DPM-Solver++(3M) SDE (Lu et al. 2022, "DPM-Solver++", third-order multistep, SDE form; k-diffusion
 * `sample_dpmpp_3m_sde`; docs/samplers.md §2.4).
 */
import type { Tensor } from '../tensor';
import { callDenoiser, drawsNoise, readSigmas, reportStep, throwIfAborted } from './sampler-loop';
import { addScaled, cloneAs, copyTensor, lincomb } from './tensor-ops';
import type { Denoiser, NoiseSource, SamplerOptions } from './types';

/**
 * If σ_{i+1} = 0: x ← D_i. Else h, H = (1+η)h, φ₂ = 1 − (1 − e^{−H})/H, φ₃ = φ₂/H − ½;
 * x ← e^{−H}x + (1 − e^{−H})D_i (e^{−H} = (σ_{i+1}/σ_i)e^{−ηh});
 * with two previous (D_{i−1}, h_1), (D_{i−2}, h_2): r0 = h_1/h, r1 = h_2/h, δ0 = (D_i − D_{i−1})/r0,
 * δ1 = (D_{i−1} − D_{i−2})/r1, x += φ₂(δ0 + (δ0 − δ1)r0/(r0+r1)) − φ₃(δ0 − δ1)/(r0+r1);
 * with one previous: x += φ₂(D_i − D_{i−1})/r0; if η > 0: x += s_noise σ_{i+1} sqrt(1 − e^{−2ηh}) noise(σ_i, σ_{i+1}).
 * NFE N, N − 1 noise calls at η = 1. Reads eta (default 1), s_noise, signal, onStep.
 * @throws RangeError for invalid sigmas; the signal's reason when aborted.
 */
export async function sampleDpmpp3mSde(
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
  let denoised1: Tensor | undefined;
  let denoised2: Tensor | undefined;
  let h1: number | undefined;
  let h2: number | undefined;
  for (let i = 0; i < n; i++) {
    throwIfAborted(options.signal);
    const sigma = sigmas[i];
    const sigmaNext = sigmas[i + 1];
    const { denoised } = await callDenoiser(denoise, x, sigma);
    let h: number | undefined;
    if (sigmaNext === 0) {
      x = cloneAs(x, denoised);
    } else {
      h = Math.log(sigma / sigmaNext);
      const hEta = h * (eta + 1);
      const decay = (sigmaNext / sigma) * Math.exp(-eta * h);
      const phi1 = -Math.expm1(-hEta);
      const phi2 = Math.expm1(-hEta) / hEta + 1;
      if (denoised2 && denoised1 && h1 !== undefined && h2 !== undefined) {
        const phi3 = phi2 / hEta - 0.5;
        const r0 = h1 / h;
        const r1 = h2 / h;
        // δ0 = (D − D1)/r0, δ1 = (D1 − D2)/r1; expand the update into coefficients of D, D1, D2.
        const a = phi2 * (1 + r0 / (r0 + r1)) - phi3 / (r0 + r1); // multiplies δ0
        const b = -phi2 * (r0 / (r0 + r1)) + phi3 / (r0 + r1); // multiplies δ1
        x = lincomb(
          [decay, phi1 + a / r0, -a / r0 + b / r1, -b / r1],
          [x, denoised, denoised1, denoised2],
        );
      } else if (denoised1 && h1 !== undefined) {
        const r0 = h1 / h;
        x = lincomb([decay, phi1 + phi2 / r0, -phi2 / r0], [x, denoised, denoised1]);
      } else {
        x = lincomb([decay, phi1], [x, denoised]);
      }
      const coefficient = sNoise * sigmaNext * Math.sqrt(-Math.expm1(-2 * eta * h));
      if (drawsNoise(coefficient)) x = addScaled(x, coefficient, noise(sigma, sigmaNext));
    }
    denoised2 = denoised1;
    denoised1 = denoised;
    h2 = h1;
    h1 = h;
    await reportStep(options, { i, total: n, sigma, sigmaNext, x, denoised });
  }
  return x;
}
