/**
 * UniPC, the unified predictor–corrector multistep solver in data prediction (Zhao et al. 2023,
 * "UniPC: A Unified Predictor-Corrector Framework for Fast Sampling of Diffusion Models", Algorithms
 * 2/3 with B(h) = h (bh1) or e^h − 1 (bh2); ComfyUI `extra_samplers/uni_pc.py`, `multistep_uni_pc_bh_update`;
 * docs/samplers.md §2.6), written in VE form (λ = −ln σ).
 */
import type { Tensor } from '../tensor';
import { callDenoiser, readSigmas, reportStep, throwIfAborted } from './sampler-loop';
import { solveLinear } from './solve-linear';
import { copyTensor, lincomb } from './tensor-ops';
import type { Denoiser, NoiseSource, SamplerOptions } from './types';

/** ComfyUI replaces a final σ = 0 by this value: UniPC's result is the sample at σ = 0.001. */
export const UNI_PC_FINAL_SIGMA = 0.001;

export type UniPcVariant = 'bh1' | 'bh2';

/**
 * The update orders UniPC uses for targets s_1..s_N with N = `steps` (lower_order_final, max order 3):
 * p = max(1, min(3, N − 1)); orders 1..p−1 for the warm-up, then min(p, N + 1 − j).
 * Example N = 10 → [1, 2, 3, 3, 3, 3, 3, 3, 2, 1].
 */
export function uniPcOrders(steps: number): number[] {
  const p = Math.max(1, Math.min(3, steps - 1));
  const orders: number[] = [];
  for (let j = 1; j <= steps; j++) orders.push(j < p ? j : Math.min(p, steps + 1 - j));
  return orders;
}

interface StoredPoint {
  sigma: number;
  model: Tensor;
}

/**
 * One UniPC update from the newest stored point to σ_t with order k (docs/samplers.md §2.6). Returns the new
 * x and, when the corrector ran, the model value at the predicted x (to be stored; no extra evaluation).
 */
async function uniPcUpdate(
  denoise: Denoiser,
  x: Tensor,
  history: StoredPoint[],
  sigmaT: number,
  order: number,
  useCorrector: boolean,
  variant: UniPcVariant,
): Promise<{ x: Tensor; modelT?: Tensor }> {
  const newest = history[history.length - 1];
  const lambdaA = -Math.log(newest.sigma);
  const lambdaT = -Math.log(sigmaT);
  const h = lambdaT - lambdaA;
  const rks: number[] = [];
  const d1s: Tensor[] = [];
  for (let j = 1; j < order; j++) {
    const older = history[history.length - 1 - j];
    const rk = (-Math.log(older.sigma) - lambdaA) / h;
    rks.push(rk);
    d1s.push(lincomb([1 / rk, -1 / rk], [older.model, newest.model]));
  }
  rks.push(1);
  const hh = -h; // data prediction
  const phi1 = Math.expm1(hh);
  const bH = variant === 'bh1' ? hh : Math.expm1(hh);
  const rows: number[][] = [];
  const b: number[] = [];
  let hPhiK = phi1 / hh - 1;
  let factorial = 1;
  for (let l = 1; l <= order; l++) {
    rows.push(rks.map((r) => r ** (l - 1)));
    b.push((hPhiK * factorial) / bH);
    factorial *= l + 1;
    hPhiK = hPhiK / hh - 1 / factorial;
  }
  // base x₀ = (σ_t/σ_a)·x − φ·m_a
  const baseCoeffs = [sigmaT / newest.sigma, -phi1];
  const baseTerms: Tensor[] = [x, newest.model];
  let xT: Tensor;
  if (d1s.length > 0) {
    const rhosP = order === 2 ? [0.5] : solveLinear(rows.slice(0, order - 1).map((r) => r.slice(0, order - 1)), b.slice(0, order - 1));
    xT = lincomb([...baseCoeffs, ...rhosP.map((rho) => -bH * rho)], [...baseTerms, ...d1s]);
  } else {
    xT = lincomb(baseCoeffs, baseTerms);
  }
  if (!useCorrector) return { x: xT };
  const rhosC = order === 1 ? [0.5] : solveLinear(rows, b);
  const { denoised: modelT } = await callDenoiser(denoise, xT, sigmaT);
  // x_t = x₀ − B·(Σ_{j<k} ρ^C_j Δ_j + ρ^C_k·(m_t − m_a))
  const last = rhosC[rhosC.length - 1];
  const coeffs = [...baseCoeffs, ...rhosC.slice(0, -1).map((rho) => -bH * rho), -bH * last, bH * last];
  // m_a appears twice: −φ from the base and +B·ρ_k from the corrector's (m_t − m_a).
  const terms: Tensor[] = [...baseTerms, ...d1s, modelT, newest.model];
  return { x: lincomb(coeffs, terms), modelT };
}

/**
 * UniPC multistep sampler. A final σ = 0 is replaced by 0.001 (the result is never fully denoised,
 * as in ComfyUI). m_0 = D(x, s_0); targets s_1..s_N with orders uniPcOrders(N); the corrector runs on
 * every update except the last (predictor only, no evaluation). NFE = N. Deterministic.
 * Variant `options.variant.variant`: 'bh1' (default, ComfyUI uni_pc) or 'bh2' (uni_pc_bh2).
 * @throws RangeError for invalid sigmas or variant; the signal's reason when aborted.
 */
export async function sampleUniPc(
  denoise: Denoiser,
  xInit: Tensor,
  sigmasIn: ArrayLike<number>,
  _noise: NoiseSource,
  options: SamplerOptions = {},
): Promise<Tensor> {
  const sigmas = readSigmas(sigmasIn);
  const variant = (options.variant?.variant ?? 'bh1') as UniPcVariant;
  if (variant !== 'bh1' && variant !== 'bh2') throw new RangeError(`uni_pc variant must be 'bh1' or 'bh2', got '${variant}'`);
  let x = copyTensor(xInit);
  const n = sigmas.length - 1;
  if (n < 1) return x;
  const targets = Float64Array.from(sigmas);
  if (targets[n] === 0) {
    if (!(targets[n - 1] > UNI_PC_FINAL_SIGMA)) {
      throw new RangeError(`uni_pc needs the last non-zero sigma above ${UNI_PC_FINAL_SIGMA}, got ${targets[n - 1]}`);
    }
    targets[n] = UNI_PC_FINAL_SIGMA;
  }
  const orders = uniPcOrders(n);
  const p = Math.max(1, Math.min(3, n - 1));
  throwIfAborted(options.signal);
  const { denoised: m0 } = await callDenoiser(denoise, x, targets[0]);
  let history: StoredPoint[] = [{ sigma: targets[0], model: m0 }];
  for (let j = 1; j <= n; j++) {
    throwIfAborted(options.signal);
    const useCorrector = j < n;
    const { x: next, modelT } = await uniPcUpdate(denoise, x, history, targets[j], orders[j - 1], useCorrector, variant);
    x = next;
    if (modelT) {
      history.push({ sigma: targets[j], model: modelT });
      if (history.length > p) history = history.slice(history.length - p);
    }
    await reportStep(options, {
      i: j - 1,
      total: n,
      sigma: sigmas[j - 1],
      sigmaNext: sigmas[j],
      x,
      denoised: history[history.length - 1].model,
    });
  }
  return x;
}

/**
 * uni_pc_bh2: sampleUniPc with variant 'bh2' forced (whatever options.variant says).
 * @throws as sampleUniPc.
 */
export async function sampleUniPcBh2(
  denoise: Denoiser,
  xInit: Tensor,
  sigmasIn: ArrayLike<number>,
  noise: NoiseSource,
  options: SamplerOptions = {},
): Promise<Tensor> {
  return sampleUniPc(denoise, xInit, sigmasIn, noise, { ...options, variant: { ...options.variant, variant: 'bh2' } });
}
