/**
 * Improved PNDM samplers (Zhang & Chen 2023, "Fast Sampling of Diffusion Models with Exponential
 * Integrator", iPNDM; ComfyUI `sample_ipndm` / `sample_ipndm_v`, sd.cpp `ipndm` / `ipndm_v`;
 * docs/samplers.md §2.3): Adams–Bashforth on the derivative d, order ≤ 4, constant weights (ipndm) or weights
 * from the actual step sizes (ipndm_v).
 */
import type { Tensor } from '../tensor';
import { callDenoiser, readSigmas, reportStep, throwIfAborted } from './sampler-loop';
import { cloneAs, copyTensor, lincomb, toDerivative } from './tensor-ops';
import type { Denoiser, NoiseSource, SamplerOptions } from './types';

/** Constant Adams–Bashforth weights by order, newest derivative first. */
export const ADAMS_BASHFORTH_WEIGHTS: readonly (readonly number[])[] = [
  [1],
  [3 / 2, -1 / 2],
  [23 / 12, -16 / 12, 5 / 12],
  [55 / 24, -59 / 24, 37 / 24, -9 / 24],
];

const MAX_ORDER = 4;

/**
 * ipndm_v weights (ComfyUI formula, docs/samplers.md §2.3) for `order` 1..4 from step sizes
 * h0 = σ_{i+1} − σ_i, h1 = σ_i − σ_{i−1}, h2 = σ_{i−1} − σ_{i−2}, h3 = σ_{i−2} − σ_{i−3} (all negative;
 * unused ones ignored). Returns weights for d_i, d_{i−1}, … (newest first). Orders 2 and 3 reduce to AB
 * for equal steps; order 4 then gives [57, −65, 43, −11]/24 (ComfyUI's formula, kept as is).
 */
export function ipndmVWeights(order: number, h0: number, h1 = NaN, h2 = NaN, h3 = NaN): number[] {
  if (order === 1) return [1];
  const q = h0 / h1;
  const w2 = [(2 + q) / 2, -q / 2];
  if (order === 2) return w2;
  // T1: the product of both ratios is subtracted from 1, then halved (docs/samplers.md §2.3 bracket note).
  const t1 = (1 - (h0 / (3 * (h0 + h1))) * ((h0 * (h0 + h1)) / (h1 * (h1 + h2)))) / 2;
  if (order === 3) return [w2[0] + t1, w2[1] - (1 + h1 / h2) * t1, (t1 * h1) / h2];
  if (order !== 4) throw new RangeError(`ipndm_v order must be 1..4, got ${order}`);
  const g = (h1 * (h1 + h2)) / (h2 * (h2 + h3));
  const t2 =
    ((1 - h0 / (3 * (h0 + h1))) / 2 + ((1 - h0 / (2 * (h0 + h1))) * h0) / (6 * (h0 + h1 + h2))) *
    ((h0 * (h0 + h1) * (h0 + h1 + h2)) / (h1 * (h1 + h2) * (h1 + h2 + h3)));
  return [
    w2[0] + t1 + t2,
    w2[1] - (1 + h1 / h2) * t1 - (1 + h1 / h2 + g) * t2,
    (t1 * h1) / h2 + (h1 / h2 + g * (1 + h2 / h3)) * t2,
    (-t2 * g * h1) / h2,
  ];
}

type WeightRule = (order: number, sigmas: Float64Array, i: number) => readonly number[];

/** Shared AB loop: x ← x + h0·Σ_j w_j d_{i−j}, order min(i+1, 4); `denoiseFinal` → x ← D_i at σ_{i+1} = 0. */
async function sampleAdamsBashforth(
  denoise: Denoiser,
  xInit: Tensor,
  sigmasIn: ArrayLike<number>,
  options: SamplerOptions,
  weights: WeightRule,
  denoiseFinal: boolean,
): Promise<Tensor> {
  const sigmas = readSigmas(sigmasIn);
  const n = sigmas.length - 1;
  let x = copyTensor(xInit);
  const ds: Tensor[] = []; // newest last, at most MAX_ORDER
  for (let i = 0; i < n; i++) {
    throwIfAborted(options.signal);
    const { denoised } = await callDenoiser(denoise, x, sigmas[i]);
    ds.push(toDerivative(x, denoised, sigmas[i]));
    if (ds.length > MAX_ORDER) ds.shift();
    if (sigmas[i + 1] === 0 && denoiseFinal) {
      x = cloneAs(x, denoised);
    } else {
      const order = Math.min(i + 1, MAX_ORDER);
      const w = weights(order, sigmas, i);
      const h0 = sigmas[i + 1] - sigmas[i];
      const coeffs = [1];
      const terms: Tensor[] = [x];
      for (let j = 0; j < order; j++) {
        coeffs.push(h0 * w[j]);
        terms.push(ds[ds.length - 1 - j]);
      }
      x = lincomb(coeffs, terms);
    }
    await reportStep(options, { i, total: n, sigma: sigmas[i], sigmaNext: sigmas[i + 1], x, denoised });
  }
  return x;
}

const constantWeights: WeightRule = (order) => ADAMS_BASHFORTH_WEIGHTS[order - 1];

/** ComfyUI ipndm_v weights from the actual steps. */
const variableWeights: WeightRule = (order, s, i) =>
  ipndmVWeights(order, s[i + 1] - s[i], s[i] - s[i - 1], s[i - 1] - s[i - 2], s[i - 2] - s[i - 3]);

/** sd.cpp ipndm_v: variable weights only for order 2, constant AB weights for orders 3 and 4. */
const sdcppVariableWeights: WeightRule = (order, s, i) => (order === 2 ? variableWeights(order, s, i) : constantWeights(order, s, i));

function readFinal(options: SamplerOptions): boolean {
  const final = options.variant?.final ?? 'denoise';
  if (final !== 'denoise' && final !== 'multistep') {
    throw new RangeError(`ipndm variant final must be 'denoise' or 'multistep', got '${final}'`);
  }
  return final === 'denoise';
}

/**
 * ipndm: constant AB weights [1], [3/2, −1/2], [23, −16, 5]/12, [55, −59, 37, −9]/24 by order min(i+1, 4);
 * x ← x + (σ_{i+1} − σ_i)Σ w_j d_{i−j}. NFE N; deterministic.
 * Variant `final`: 'denoise' (ComfyUI, default) → x ← D_i on the step to σ = 0; 'multistep' (sd.cpp) → the
 * formula on the final step too.
 * @throws RangeError for invalid sigmas or variant values; the signal's reason when aborted.
 */
export async function sampleIpndm(
  denoise: Denoiser,
  xInit: Tensor,
  sigmasIn: ArrayLike<number>,
  _noise: NoiseSource,
  options: SamplerOptions = {},
): Promise<Tensor> {
  return sampleAdamsBashforth(denoise, xInit, sigmasIn, options, constantWeights, readFinal(options));
}

/**
 * ipndm_v: variable-step iPNDM (weights ipndmVWeights). NFE N; deterministic.
 * Variant `flavor`: 'comfy' (default) → ComfyUI weights for every order and x ← D_i on the final step;
 * 'sdcpp' → variable weights only at order 2, AB weights at orders 3–4, formula on the final step.
 * @throws RangeError for invalid sigmas or variant values; the signal's reason when aborted.
 */
export async function sampleIpndmV(
  denoise: Denoiser,
  xInit: Tensor,
  sigmasIn: ArrayLike<number>,
  _noise: NoiseSource,
  options: SamplerOptions = {},
): Promise<Tensor> {
  const flavor = options.variant?.flavor ?? 'comfy';
  if (flavor === 'comfy') return sampleAdamsBashforth(denoise, xInit, sigmasIn, options, variableWeights, true);
  if (flavor === 'sdcpp') return sampleAdamsBashforth(denoise, xInit, sigmasIn, options, sdcppVariableWeights, false);
  throw new RangeError(`ipndm_v variant flavor must be 'comfy' or 'sdcpp', got '${flavor}'`);
}
