/**
 * DPM-Solver in noise-prediction form (Lu et al. 2022, "DPM-Solver: A Fast ODE Solver for Diffusion
 * Probabilistic Model Sampling in Around 10 Steps", §3.3 and §4 adaptive step size; k-diffusion `DPMSolver`,
 * `sample_dpm_fast`, `sample_dpm_adaptive`; docs/samplers.md §2.5). Both samplers use only σ[0] and the last
 * non-zero sigma of the schedule, work in t = −ln σ with ε(x, t) = (x − D(x, σ(t)))/σ(t), and **end at
 * σ_min, not 0**: the result still carries σ_min of noise.
 */
import type { Tensor } from '../tensor';
import { ancestralStep } from './ancestral-step';
import { callDenoiser, drawsNoise, readSigmas, reportStep, throwIfAborted } from './sampler-loop';
import { addScaled, allocLike, copyTensor, lincomb } from './tensor-ops';
import type { Denoiser, NoiseSource, SamplerOptions } from './types';

/** Extra options of dpm_adaptive (k-diffusion defaults). */
export interface DpmAdaptiveOptions extends SamplerOptions {
  /** Order of the embedded pair: 3 (2/3 pair, default) or 2 (1/2 pair). */
  order?: 2 | 3;
  rtol?: number;
  atol?: number;
  h_init?: number;
  pcoeff?: number;
  icoeff?: number;
  dcoeff?: number;
  accept_safety?: number;
}

/** Stop dpm_adaptive after this many attempts (a denoiser returning garbage must not hang the service). */
const MAX_ADAPTIVE_ATTEMPTS = 100_000;

/** The ends of the interval the DPM-Solver samplers integrate over. */
function solverRange(sigmas: Float64Array): { sigmaMax: number; sigmaMin: number } {
  const last = sigmas[sigmas.length - 1];
  const sigmaMin = last === 0 ? sigmas[sigmas.length - 2] : last;
  return { sigmaMax: sigmas[0], sigmaMin };
}

/**
 * ε evaluation with a per-step cache keyed like k-diffusion's eps_cache ('eps', 'eps_r1', 'eps_r2'),
 * so the embedded pairs share evaluations.
 */
class EpsEvaluator {
  constructor(
    private readonly denoise: Denoiser,
    private readonly sigmaOf: (t: number) => number,
  ) {}

  nfe = 0;

  async eps(cache: Map<string, Tensor>, key: string, x: Tensor, t: number): Promise<Tensor> {
    const hit = cache.get(key);
    if (hit) return hit;
    const sigma = this.sigmaOf(t);
    const { denoised } = await callDenoiser(this.denoise, x, sigma);
    this.nfe++;
    const e = allocLike(x);
    for (let k = 0; k < e.length; k++) e[k] = (x[k] - denoised[k]) / sigma;
    cache.set(key, e);
    return e;
  }

  /** order 1: x' = x − σ(t')·expm1(h)·ε₀. */
  async step1(x: Tensor, t: number, tNext: number, cache: Map<string, Tensor>): Promise<Tensor> {
    const h = tNext - t;
    const e0 = await this.eps(cache, 'eps', x, t);
    return lincomb([1, -this.sigmaOf(tNext) * Math.expm1(h)], [x, e0]);
  }

  /** order 2: u₁ = x − σ(s₁)expm1(r₁h)ε₀, x' = x − σ(t')expm1(h)ε₀ − σ(t')/(2r₁)·expm1(h)(ε₁ − ε₀). */
  async step2(x: Tensor, t: number, tNext: number, cache: Map<string, Tensor>, r1 = 0.5): Promise<Tensor> {
    const h = tNext - t;
    const e0 = await this.eps(cache, 'eps', x, t);
    const s1 = t + r1 * h;
    const u1 = lincomb([1, -this.sigmaOf(s1) * Math.expm1(r1 * h)], [x, e0]);
    const e1 = await this.eps(cache, 'eps_r1', u1, s1);
    const sNext = this.sigmaOf(tNext);
    const em = Math.expm1(h);
    const c = (sNext / (2 * r1)) * em;
    return lincomb([1, -sNext * em + c, -c], [x, e0, e1]);
  }

  /** order 3 (r₁ = ⅓, r₂ = ⅔), docs/samplers.md §2.5. */
  async step3(x: Tensor, t: number, tNext: number, cache: Map<string, Tensor>, r1 = 1 / 3, r2 = 2 / 3): Promise<Tensor> {
    const h = tNext - t;
    const e0 = await this.eps(cache, 'eps', x, t);
    const s1 = t + r1 * h;
    const s2 = t + r2 * h;
    const u1 = lincomb([1, -this.sigmaOf(s1) * Math.expm1(r1 * h)], [x, e0]);
    const e1 = await this.eps(cache, 'eps_r1', u1, s1);
    const sig2 = this.sigmaOf(s2);
    const c2 = sig2 * (r2 / r1) * (Math.expm1(r2 * h) / (r2 * h) - 1);
    const u2 = lincomb([1, -sig2 * Math.expm1(r2 * h) + c2, -c2], [x, e0, e1]);
    const e2 = await this.eps(cache, 'eps_r2', u2, s2);
    const sNext = this.sigmaOf(tNext);
    const c3 = (sNext / r2) * (Math.expm1(h) / h - 1);
    return lincomb([1, -sNext * Math.expm1(h) + c3, -c3], [x, e0, e2]);
  }
}

/** σ(t) = e^{−t}, returning the schedule's own end values at the end times (no ulp drift at the ends). */
function makeSigmaOf(tStart: number, tEnd: number, sigmaMax: number, sigmaMin: number): (t: number) => number {
  return (t) => (t === tStart ? sigmaMax : t === tEnd ? sigmaMin : Math.exp(-t));
}

/** torch-style linspace with both ends exact. */
function linspace(a: number, b: number, count: number): number[] {
  if (count === 1) return [a];
  const step = (b - a) / (count - 1);
  return Array.from({ length: count }, (_, i) => (i < count / 2 ? a + step * i : b - step * (count - 1 - i)));
}

/**
 * The order list of dpm_fast for n evaluations: m = ⌊n/3⌋ + 1 intervals; [3,…,3, 2, 1] if n mod 3 = 0,
 * else [3,…,3, n mod 3]. Its sum is n.
 */
export function dpmFastOrders(n: number): number[] {
  const m = Math.floor(n / 3) + 1;
  if (n % 3 === 0) return [...new Array<number>(m - 2).fill(3), 2, 1];
  return [...new Array<number>(m - 1).fill(3), n % 3];
}

/**
 * dpm_fast: fixed-NFE DPM-Solver over [σ_min, σ_max] = [last non-zero σ, σ[0]] with n = N evaluations
 * on m = ⌊n/3⌋ + 1 intervals uniform in t (orders dpmFastOrders(n)). Ends at σ_min.
 * η > 0 (A1111 passes 1): per interval (σ_d, σ_u) = split(σ(t), σ(t'), η), step to t'_ = min(t_end, −ln σ_d),
 * then add s_noise·sqrt(σ(t')² − σ(t'_)²)·noise(σ(t), σ(t')) (skipped when that coefficient is 0).
 * Reads eta (default 0), s_noise, signal, onStep (once per interval; total = number of intervals).
 * @throws RangeError for invalid sigmas; the signal's reason when aborted.
 */
export async function sampleDpmFast(
  denoise: Denoiser,
  xInit: Tensor,
  sigmasIn: ArrayLike<number>,
  noise: NoiseSource,
  options: SamplerOptions = {},
): Promise<Tensor> {
  const sigmas = readSigmas(sigmasIn);
  let x = copyTensor(xInit);
  if (sigmas.length < 2) return x;
  const n = sigmas.length - 1;
  const eta = options.eta ?? 0;
  const sNoise = options.s_noise ?? 1;
  const { sigmaMax, sigmaMin } = solverRange(sigmas);
  const tStart = -Math.log(sigmaMax);
  const tEnd = -Math.log(sigmaMin);
  const sigmaOf = makeSigmaOf(tStart, tEnd, sigmaMax, sigmaMin);
  const solver = new EpsEvaluator(denoise, sigmaOf);
  const orders = dpmFastOrders(n);
  const ts = linspace(tStart, tEnd, orders.length + 1);
  for (let i = 0; i < orders.length; i++) {
    throwIfAborted(options.signal);
    const t = ts[i];
    const tNext = ts[i + 1];
    let tTarget = tNext;
    let su = 0;
    if (eta > 0) {
      const { sigmaDown } = ancestralStep(sigmaOf(t), sigmaOf(tNext), eta);
      tTarget = Math.min(tEnd, -Math.log(sigmaDown));
      su = Math.sqrt(Math.max(0, sigmaOf(tNext) ** 2 - sigmaOf(tTarget) ** 2));
    }
    const cache = new Map<string, Tensor>();
    const e0 = await solver.eps(cache, 'eps', x, t);
    const denoised = lincomb([1, -sigmaOf(t)], [x, e0]);
    if (orders[i] === 1) x = await solver.step1(x, t, tTarget, cache);
    else if (orders[i] === 2) x = await solver.step2(x, t, tTarget, cache);
    else x = await solver.step3(x, t, tTarget, cache);
    const coefficient = su * sNoise;
    if (drawsNoise(coefficient)) x = addScaled(x, coefficient, noise(sigmaOf(t), sigmaOf(tNext)));
    await reportStep(options, { i, total: orders.length, sigma: sigmaOf(t), sigmaNext: sigmaOf(tNext), x, denoised });
  }
  return x;
}

/**
 * dpm_adaptive: embedded DPM-Solver pair (2/3 by default) with a PID step-size controller over
 * [σ_min, σ_max] = [last non-zero σ, σ[0]]; ends at σ_min. Per attempt: t = min(t_end, s + h) (η > 0:
 * ancestral target as dpm_fast, controller order 1.5); the building blocks use the actual step t − s;
 * δ = max(atol, rtol·max(|x_low|, |x_prev|)); err = ‖(x_low − x_high)/δ‖₂/sqrt(numel) over the whole tensor
 * (so a batch shares one step sequence, as upstream); f = 1 + atan(Π errs^b − 1); accept iff f ≥
 * accept_safety; h ← h·f always. NFE is data dependent (3 per attempt for order 3, 2 for order 2).
 * Reads eta (default 0), s_noise, order, rtol (0.05), atol (0.0078), h_init (0.05), pcoeff (0), icoeff (1),
 * dcoeff (0), accept_safety (0.81), signal, onStep (after each accepted step; `total` is an estimate).
 * @throws RangeError for invalid sigmas or options; Error when the error estimate is not finite or the
 *   attempt limit is reached; the signal's reason when aborted.
 */
export async function sampleDpmAdaptive(
  denoise: Denoiser,
  xInit: Tensor,
  sigmasIn: ArrayLike<number>,
  noise: NoiseSource,
  options: DpmAdaptiveOptions = {},
): Promise<Tensor> {
  const sigmas = readSigmas(sigmasIn);
  let x = copyTensor(xInit);
  if (sigmas.length < 2) return x;
  const order = options.order ?? 3;
  if (order !== 2 && order !== 3) throw new RangeError(`dpm_adaptive order must be 2 or 3, got ${order}`);
  const eta = options.eta ?? 0;
  const sNoise = options.s_noise ?? 1;
  const rtol = options.rtol ?? 0.05;
  const atol = options.atol ?? 0.0078;
  const pcoeff = options.pcoeff ?? 0;
  const icoeff = options.icoeff ?? 1;
  const dcoeff = options.dcoeff ?? 0;
  const acceptSafety = options.accept_safety ?? 0.81;
  let h = Math.abs(options.h_init ?? 0.05);
  const { sigmaMax, sigmaMin } = solverRange(sigmas);
  const tStart = -Math.log(sigmaMax);
  const tEnd = -Math.log(sigmaMin);
  const sigmaOf = makeSigmaOf(tStart, tEnd, sigmaMax, sigmaMin);
  const solver = new EpsEvaluator(denoise, sigmaOf);

  // PID controller (k-diffusion PIDStepSizeController).
  const q = eta > 0 ? 1.5 : order;
  const b1 = (pcoeff + icoeff + dcoeff) / q;
  const b2 = -(pcoeff + 2 * dcoeff) / q;
  const b3 = dcoeff / q;
  let errs: number[] = [];

  let s = tStart;
  let xPrev: Tensor = x;
  let accepted = 0;
  let attempts = 0;
  while (s < tEnd - 1e-5) {
    throwIfAborted(options.signal);
    if (++attempts > MAX_ADAPTIVE_ATTEMPTS) throw new Error(`dpm_adaptive: no convergence after ${MAX_ADAPTIVE_ATTEMPTS} attempts`);
    const t = Math.min(tEnd, s + h);
    let tTarget = t;
    let su = 0;
    if (eta > 0) {
      const { sigmaDown } = ancestralStep(sigmaOf(s), sigmaOf(t), eta);
      tTarget = Math.min(tEnd, -Math.log(sigmaDown));
      su = Math.sqrt(Math.max(0, sigmaOf(t) ** 2 - sigmaOf(tTarget) ** 2));
    }
    const cache = new Map<string, Tensor>();
    const e0 = await solver.eps(cache, 'eps', x, s);
    const denoised = lincomb([1, -sigmaOf(s)], [x, e0]);
    let xLow: Tensor;
    let xHigh: Tensor;
    if (order === 2) {
      xLow = await solver.step1(x, s, tTarget, cache);
      xHigh = await solver.step2(x, s, tTarget, cache);
    } else {
      xLow = await solver.step2(x, s, tTarget, cache, 1 / 3);
      xHigh = await solver.step3(x, s, tTarget, cache);
    }
    let sumSq = 0;
    for (let k = 0; k < x.length; k++) {
      const delta = Math.max(atol, rtol * Math.max(Math.abs(xLow[k]), Math.abs(xPrev[k])));
      const r = (xLow[k] - xHigh[k]) / delta;
      sumSq += r * r;
    }
    const error = Math.sqrt(sumSq) / Math.sqrt(x.length);
    if (!Number.isFinite(error)) throw new Error('dpm_adaptive: the error estimate is not finite (denoiser returned NaN/Inf?)');
    const invError = 1 / (error + 1e-8);
    if (errs.length === 0) errs = [invError, invError, invError];
    errs[0] = invError;
    const factor = 1 + Math.atan(errs[0] ** b1 * errs[1] ** b2 * errs[2] ** b3 - 1);
    const accept = factor >= acceptSafety;
    if (accept) {
      errs[2] = errs[1];
      errs[1] = errs[0];
    }
    h *= factor;
    if (accept) {
      const sigmaFrom = sigmaOf(s);
      xPrev = xLow;
      x = xHigh;
      const coefficient = su * sNoise;
      if (drawsNoise(coefficient)) x = addScaled(x, coefficient, noise(sigmaFrom, sigmaOf(t)));
      s = t;
      accepted++;
      const remaining = tEnd - s < 1e-5 ? 0 : Math.ceil((tEnd - s) / h);
      await reportStep(options, { i: accepted - 1, total: accepted + remaining, sigma: sigmaFrom, sigmaNext: sigmaOf(s), x, denoised });
    }
  }
  return x;
}
