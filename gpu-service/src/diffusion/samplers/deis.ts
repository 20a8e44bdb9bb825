/**
 * DEIS, "tab" mode, max order 3 (Zhang & Chen 2023, "Fast Sampling of Diffusion Models with Exponential
 * Integrator"; ComfyUI `sample_deis` + `deis.py`; docs/samplers.md §2.3): multistep on the derivative d with
 * weights from integrating Lagrange polynomials in a VP time variable, built from the schedule alone.
 */
import type { Tensor } from '../tensor';
import { callDenoiser, readSigmas, reportStep, throwIfAborted } from './sampler-loop';
import { copyTensor, lincomb, toDerivative } from './tensor-ops';
import type { Denoiser, NoiseSource, SamplerOptions } from './types';

/** ComfyUI's fixed EDM constants for the VP time map (independent of the model). */
const DEIS_SIGMA_MIN = 0.002;
const DEIS_SIGMA_MAX = 80;
const DEIS_EPSILON_S = 1e-3;
/** Riemann-sum points per step; both ends included, sum divided by M (reproduces ComfyUI exactly). */
export const DEIS_QUADRATURE_POINTS = 10000;
const DEIS_MAX_ORDER = 3;

const BETA_D =
  (2 * (Math.log(DEIS_SIGMA_MIN ** 2 + 1) / DEIS_EPSILON_S - Math.log(DEIS_SIGMA_MAX ** 2 + 1))) / (DEIS_EPSILON_S - 1);
const BETA_MIN = Math.log(DEIS_SIGMA_MAX ** 2 + 1) - BETA_D / 2;

/** VP time of σ: t(σ) = (sqrt(β_min² + 2β_d ln(σ²+1)) − β_min)/β_d. */
export function deisTime(sigma: number): number {
  return (Math.sqrt(BETA_MIN * BETA_MIN + 2 * BETA_D * Math.log1p(sigma * sigma)) - BETA_MIN) / BETA_D;
}

/** dσ/dτ: g(τ) = ½(τβ_d + β_min)/sqrt(ᾱ(τ)(1 − ᾱ(τ))), ᾱ(τ) = exp(−½τ²β_d − τβ_min). */
function deisIntegrand(tau: number): number {
  const alpha = Math.exp(-0.5 * tau * tau * BETA_D - tau * BETA_MIN);
  return (0.5 * (tau * BETA_D + BETA_MIN)) / Math.sqrt(alpha * (1 - alpha));
}

/**
 * DEIS weights for every step of `sigmas` (float64, strictly decreasing, last may be 0): entry i is []
 * for an Euler step (i = 0, or σ_{i+1} = 0) and otherwise [c_0, …, c_{k−1}] (k = min(i+1, maxOrder)),
 * c_j multiplying d_{i−j}: c_j = Σ_{m<M} g(τ_m)·L_j(τ_m)·(t_{i+1} − t_i)/M, τ = linspace(t_i, t_{i+1}, M).
 */
export function deisCoefficients(sigmas: ArrayLike<number>, maxOrder = DEIS_MAX_ORDER, points = DEIS_QUADRATURE_POINTS): number[][] {
  const n = sigmas.length - 1;
  const t = Array.from({ length: sigmas.length }, (_, i) => deisTime(sigmas[i]));
  const out: number[][] = [];
  for (let i = 0; i < n; i++) {
    const order = Math.min(i + 1, maxOrder);
    if (order === 1 || sigmas[i + 1] === 0) {
      out.push([]);
      continue;
    }
    const nodes = Array.from({ length: order }, (_, m) => t[i - m]);
    const start = t[i];
    const end = t[i + 1];
    const step = (end - start) / (points - 1);
    const dtau = (end - start) / points;
    const c = new Array<number>(order).fill(0);
    for (let m = 0; m < points; m++) {
      // torch.linspace fills the second half from the end, so the last point is exactly `end`.
      const tau = m < points / 2 ? start + step * m : end - step * (points - 1 - m);
      const g = deisIntegrand(tau);
      for (let j = 0; j < order; j++) {
        let poly = 1;
        for (let k = 0; k < order; k++) {
          if (k !== j) poly *= (tau - nodes[k]) / (nodes[j] - nodes[k]);
        }
        c[j] += g * poly;
      }
    }
    out.push(c.map((v) => v * dtau));
  }
  return out;
}

/**
 * Order min(i+1, 3); the first step and the step to σ = 0 are Euler; otherwise
 * x ← x + c_0 d_i + c_1 d_{i−1} (+ c_2 d_{i−2}) with deisCoefficients. NFE N; deterministic.
 * @throws RangeError for invalid sigmas; the signal's reason when aborted.
 */
export async function sampleDeis(
  denoise: Denoiser,
  xInit: Tensor,
  sigmasIn: ArrayLike<number>,
  _noise: NoiseSource,
  options: SamplerOptions = {},
): Promise<Tensor> {
  const sigmas = readSigmas(sigmasIn);
  const n = sigmas.length - 1;
  const coefficients = deisCoefficients(sigmas);
  let x = copyTensor(xInit);
  const ds: Tensor[] = []; // newest last
  for (let i = 0; i < n; i++) {
    throwIfAborted(options.signal);
    const { denoised } = await callDenoiser(denoise, x, sigmas[i]);
    const d = toDerivative(x, denoised, sigmas[i]);
    ds.push(d);
    if (ds.length > DEIS_MAX_ORDER) ds.shift();
    const c = coefficients[i];
    if (c.length === 0) {
      x = lincomb([1, sigmas[i + 1] - sigmas[i]], [x, d]);
    } else {
      const coeffs = [1];
      const terms: Tensor[] = [x];
      for (let j = 0; j < c.length; j++) {
        coeffs.push(c[j]);
        terms.push(ds[ds.length - 1 - j]);
      }
      x = lincomb(coeffs, terms);
    }
    await reportStep(options, { i, total: n, sigma: sigmas[i], sigmaNext: sigmas[i + 1], x, denoised });
  }
  return x;
}
