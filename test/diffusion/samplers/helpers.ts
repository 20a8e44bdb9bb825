/**
 * Test helpers for the sampler suites: analytic denoisers with closed-form answers, sigma grids built
 * here (the schedules module is tested on its own), a tiny seeded normal generator and a recording
 * noise source.
 */
import type { NormalGenerator } from '../../../gpu-service/src/diffusion/rng/types';
import type { Denoiser, NoiseSource } from '../../../gpu-service/src/diffusion/samplers/types';
import type { Tensor } from '../../../gpu-service/src/diffusion/tensor';

/** SD1.5's table ends (docs/samplers.md §1.1), the usual sampling range. */
export const SIGMA_MAX = 14.614641189575195;
export const SIGMA_MIN = 0.029167158156633377;

/** Karras et al. 2022 ρ-schedule, N sigmas from sigmaMax to sigmaMin (no trailing 0). */
export function karras(n: number, sigmaMin = SIGMA_MIN, sigmaMax = SIGMA_MAX, rho = 7): number[] {
  const a = sigmaMax ** (1 / rho);
  const b = sigmaMin ** (1 / rho);
  return Array.from({ length: n }, (_, k) => (a + (n === 1 ? 0 : k / (n - 1)) * (b - a)) ** rho);
}

/** Log-uniform sigmas, N values from sigmaMax to sigmaMin (no trailing 0). */
export function exponential(n: number, sigmaMin = SIGMA_MIN, sigmaMax = SIGMA_MAX): number[] {
  const la = Math.log(sigmaMax);
  const lb = Math.log(sigmaMin);
  return Array.from({ length: n }, (_, k) => Math.exp(la + (n === 1 ? 0 : k / (n - 1)) * (lb - la)));
}

/** Append the trailing 0 of a sampling schedule. */
export function withZero(sigmas: number[]): number[] {
  return [...sigmas, 0];
}

/** A denoiser that also counts its calls and checks that it is never called at σ ≤ 0. */
export interface CountingDenoiser extends Denoiser {
  calls: number[];
}

function counting(fn: (x: Tensor, sigma: number) => Tensor, uncond?: (x: Tensor, sigma: number) => Tensor): CountingDenoiser {
  const calls: number[] = [];
  const d = (async (x: Tensor, sigma: number) => {
    if (!(sigma > 0)) throw new Error(`denoiser called at sigma ${sigma}`);
    calls.push(sigma);
    return uncond ? { denoised: fn(x, sigma), uncond: uncond(x, sigma) } : { denoised: fn(x, sigma) };
  }) as CountingDenoiser;
  d.calls = calls;
  return d;
}

function like(x: Tensor): Tensor {
  return x instanceof Float64Array ? new Float64Array(x.length) : new Float32Array(x.length);
}

/** Exact posterior mean for data N(mu, s²): D(x, σ) = mu + s²/(s² + σ²)(x − mu). */
export function gaussianDenoiser(mu: number, s: number): CountingDenoiser {
  return counting((x, sigma) => {
    const out = like(x);
    const c = (s * s) / (s * s + sigma * sigma);
    for (let k = 0; k < x.length; k++) out[k] = mu + c * (x[k] - mu);
    return out;
  });
}

/** A component of a Gaussian mixture. */
export interface MixtureComponent {
  weight: number;
  mu: number;
  s: number;
}

/**
 * Exact posterior mean for a 1-D Gaussian mixture Σ w_k N(mu_k, s_k²) observed as x = x0 + σn:
 * r_k ∝ w_k N(x; mu_k, s_k² + σ²), D = Σ r_k (mu_k + s_k²/(s_k² + σ²)(x − mu_k)).
 */
export function mixtureDenoiser(components: MixtureComponent[]): CountingDenoiser {
  return counting((x, sigma) => mixtureMean(components, x, sigma));
}

export function mixtureMean(components: MixtureComponent[], x: Tensor, sigma: number): Tensor {
  const out = like(x);
  const K = components.length;
  const logw = components.map((c) => Math.log(c.weight));
  const v = components.map((c) => c.s * c.s + sigma * sigma);
  const shrink = components.map((c, j) => (c.s * c.s) / v[j]);
  const ls = new Float64Array(K);
  for (let k = 0; k < x.length; k++) {
    let maxL = -Infinity;
    for (let j = 0; j < K; j++) {
      const dx = x[k] - components[j].mu;
      ls[j] = logw[j] - 0.5 * Math.log(v[j]) - (dx * dx) / (2 * v[j]);
      if (ls[j] > maxL) maxL = ls[j];
    }
    let z = 0;
    let acc = 0;
    for (let j = 0; j < K; j++) {
      const r = Math.exp(ls[j] - maxL);
      z += r;
      acc += r * (components[j].mu + shrink[j] * (x[k] - components[j].mu));
    }
    out[k] = acc / z;
  }
  return out;
}

/** Probability-flow solution for N(mu, s²) data from x at sigmaFrom to sigmaTo: mu + sqrt((s²+σ_to²)/(s²+σ_from²))(x − mu). */
export function gaussianFlow(mu: number, s: number, x: ArrayLike<number>, sigmaFrom: number, sigmaTo: number): Float64Array {
  const c = Math.sqrt((s * s + sigmaTo * sigmaTo) / (s * s + sigmaFrom * sigmaFrom));
  return Float64Array.from(x, (v) => mu + c * (v - mu));
}

/** Max absolute difference. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let k = 0; k < a.length; k++) m = Math.max(m, Math.abs(a[k] - b[k]));
  return m;
}

/** Sample mean and (population) variance. */
export function moments(x: ArrayLike<number>): { mean: number; variance: number } {
  let s = 0;
  for (let k = 0; k < x.length; k++) s += x[k];
  const mean = s / x.length;
  let v = 0;
  for (let k = 0; k < x.length; k++) v += (x[k] - mean) ** 2;
  return { mean, variance: v / x.length };
}

/**
 * A tiny seeded standard-normal generator for tests (mulberry32 uniforms → Box–Muller), continuing one
 * stream across calls like a torch.Generator. Not torch-compatible (the rng module owns that).
 */
export function seededNormalGenerator(seed: number): NormalGenerator {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  return {
    kind: 'cpu',
    seed,
    randn(n: number): Float32Array {
      const out = new Float32Array(n);
      for (let k = 0; k < n; k += 2) {
        const r = Math.sqrt(-2 * Math.log(uniform()));
        const th = 2 * Math.PI * uniform();
        out[k] = r * Math.cos(th);
        if (k + 1 < n) out[k + 1] = r * Math.sin(th);
      }
      return out;
    },
  };
}

/** Float64 standard normals from a seeded generator (for initial latents in the maths tests). */
export function normals64(seed: number, n: number): Float64Array {
  return Float64Array.from(seededNormalGenerator(seed).randn(n));
}

/** A noise source that records every (σ, σ') call and returns fresh seeded normals (float64). */
export interface RecordingNoise extends NoiseSource {
  calls: [number, number][];
}

export function recordingNoise(numel: number, seed = 1): RecordingNoise {
  const g = seededNormalGenerator(seed);
  const calls: [number, number][] = [];
  const source = ((sigma: number, sigmaNext: number) => {
    calls.push([sigma, sigmaNext]);
    return Float64Array.from(g.randn(numel));
  }) as RecordingNoise;
  source.calls = calls;
  return source;
}

/** Replays a fixed list of noise tensors in call order (throws when it runs out). */
export function replayNoise(tensors: Tensor[]): NoiseSource {
  let i = 0;
  return () => {
    if (i >= tensors.length) throw new Error(`replay noise exhausted after ${tensors.length} calls`);
    return tensors[i++];
  };
}

/** A noise source that must never be called. */
export const NO_NOISE: NoiseSource = (sigma, sigmaNext) => {
  throw new Error(`unexpected noise(${sigma}, ${sigmaNext}) call`);
};

/**
 * `count` draws of x_T = x0 + σ_max·n with x0 from the mixture (the exact marginal at σ_max, so an exact
 * sampler returns exact data samples). Float64.
 */
export function mixtureLatents(components: MixtureComponent[], count: number, sigmaMax: number, seed: number): Float64Array {
  const g = seededNormalGenerator(seed);
  const z = g.randn(count);
  const n = g.randn(count);
  const u = seededNormalGenerator(seed + 1000).randn(count); // component choice through Φ(u)
  const out = new Float64Array(count);
  for (let k = 0; k < count; k++) {
    const p = normalCdf(u[k]);
    let acc = 0;
    let j = 0;
    while (j < components.length - 1 && p > acc + components[j].weight) acc += components[j++].weight;
    const c = components[j];
    out[k] = c.mu + c.s * z[k] + sigmaMax * n[k];
  }
  return out;
}

/** Standard normal CDF Φ via erf (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7). */
export function normalCdf(x: number): number {
  const t = 1 / (1 + 0.3275911 * (Math.abs(x) / Math.SQRT2));
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-(x * x) / 2);
  return x >= 0 ? 0.5 * (1 + y) : 0.5 * (1 - y);
}

/** Mean, variance and P(x < cut) of a Gaussian mixture. */
export function mixtureStats(components: MixtureComponent[], cut: number): { mean: number; variance: number; below: number } {
  const mean = components.reduce((a, c) => a + c.weight * c.mu, 0);
  const second = components.reduce((a, c) => a + c.weight * (c.s * c.s + c.mu * c.mu), 0);
  const below = components.reduce((a, c) => a + c.weight * normalCdf((cut - c.mu) / c.s), 0);
  return { mean, variance: second - mean * mean, below };
}

/** Fraction of values below `cut`. */
export function fractionBelow(x: ArrayLike<number>, cut: number): number {
  let n = 0;
  for (let k = 0; k < x.length; k++) if (x[k] < cut) n++;
  return n / x.length;
}
