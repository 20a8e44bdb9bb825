/**
 * Linear multistep (Adams–Bashforth with variable steps) on the derivative, order ≤ 4 (docs/samplers.md §2.3;
 * Karras et al. 2022 / k-diffusion `sample_lms`, `linear_multistep_coeff`).
 */
import type { Tensor } from '../tensor';
import { callDenoiser, readSigmas, reportStep, throwIfAborted } from './sampler-loop';
import { cloneAs, copyTensor, lincomb, toDerivative } from './tensor-ops';
import type { Denoiser, NoiseSource, SamplerOptions } from './types';

/** Gauss–Legendre nodes/weights on [−1, 1], 3 points: exact for polynomials of degree ≤ 5. */
const GL3_NODES = [-Math.sqrt(3 / 5), 0, Math.sqrt(3 / 5)];
const GL3_WEIGHTS = [5 / 9, 8 / 9, 5 / 9];

/**
 * c_j = ∫_{σ_i}^{σ_{i+1}} Π_{m≠j, m<order} (τ − σ_{i−m})/(σ_{i−j} − σ_{i−m}) dτ, the weight of d_{i−j}.
 * The integrand has degree order − 1 ≤ 3, integrated exactly (k-diffusion uses adaptive quadrature).
 * @throws RangeError when order − 1 > i (not enough history).
 */
export function lmsCoefficient(order: number, sigmas: ArrayLike<number>, i: number, j: number): number {
  if (order - 1 > i) throw new RangeError(`LMS order ${order} too high for step ${i}`);
  const a = sigmas[i];
  const b = sigmas[i + 1];
  const half = (b - a) / 2;
  const mid = (a + b) / 2;
  let total = 0;
  for (let q = 0; q < GL3_NODES.length; q++) {
    const tau = mid + half * GL3_NODES[q];
    let prod = 1;
    for (let m = 0; m < order; m++) {
      if (m === j) continue;
      prod *= (tau - sigmas[i - m]) / (sigmas[i - j] - sigmas[i - m]);
    }
    total += GL3_WEIGHTS[q] * prod;
  }
  return total * half;
}

/**
 * k = min(i+1, order); x ← x + Σ_j c_j d_{i−j}. NFE N; deterministic.
 * Variant `options.variant.final`: 'lms' (k-diffusion / A1111, default of this function) applies the
 * multistep formula on the final step too; 'denoise' (ComfyUI) sets x ← D_i when σ_{i+1} = 0.
 * `options.variant.order` may lower the maximum order (default '4').
 * @throws RangeError for invalid sigmas or variant values; the signal's reason when aborted.
 */
export async function sampleLms(
  denoise: Denoiser,
  xInit: Tensor,
  sigmasIn: ArrayLike<number>,
  _noise: NoiseSource,
  options: SamplerOptions = {},
): Promise<Tensor> {
  const sigmas = readSigmas(sigmasIn);
  const n = sigmas.length - 1;
  const final = options.variant?.final ?? 'lms';
  if (final !== 'lms' && final !== 'denoise') throw new RangeError(`lms variant final must be 'lms' or 'denoise', got '${final}'`);
  const maxOrder = Number(options.variant?.order ?? 4);
  if (!Number.isInteger(maxOrder) || maxOrder < 1 || maxOrder > 4) throw new RangeError(`lms order must be 1..4, got ${options.variant?.order}`);
  let x = copyTensor(xInit);
  const ds: Tensor[] = []; // newest last
  for (let i = 0; i < n; i++) {
    throwIfAborted(options.signal);
    const { denoised } = await callDenoiser(denoise, x, sigmas[i]);
    ds.push(toDerivative(x, denoised, sigmas[i]));
    if (ds.length > maxOrder) ds.shift();
    if (sigmas[i + 1] === 0 && final === 'denoise') {
      x = cloneAs(x, denoised);
    } else {
      const order = Math.min(i + 1, maxOrder);
      const coeffs = [1];
      const terms: Tensor[] = [x];
      for (let j = 0; j < order; j++) {
        coeffs.push(lmsCoefficient(order, sigmas, i, j));
        terms.push(ds[ds.length - 1 - j]);
      }
      x = lincomb(coeffs, terms);
    }
    await reportStep(options, { i, total: n, sigma: sigmas[i], sigmaNext: sigmas[i + 1], x, denoised });
  }
  return x;
}
