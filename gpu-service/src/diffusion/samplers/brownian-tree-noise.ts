/**
 * A seeded Brownian-tree noise source for the SDE samplers (docs/samplers.md §0.3; the role of k-diffusion's
 * BrownianTreeNoiseSampler / torchsde.BrownianTree, Li et al. 2020 "Scalable Gradients for Stochastic
 * Differential Equations", §4 "virtual Brownian tree"):
 *   noise(σ, σ') = (W(σ') − W(σ)) / sqrt(|σ' − σ|),
 * with W one standard Brownian motion per latent element on [σ_min, σ_max], W(σ_min) = 0. Because W is
 * fixed by the seed, results stay stable when the step count changes, and any query order gives the same
 * values (every W(t) is a pure function of (seed, t)).
 *
 * Construction: W(σ_max) ~ N(0, σ_max − σ_min); then a fixed-depth bisection of [σ_min, σ_max] at the
 * geometric midpoint m = sqrt(l·r) (so leaves are narrow in relative terms, where the samplers' sigmas
 * are dense), each node drawing W(m) | W(l), W(r) ~ N(W(l) + (m−l)/(r−l)·(W(r) − W(l)), (m−l)(r−m)/(r−l))
 * from counter-based normals keyed by its path. A query t inside a leaf [l, r] gets the bridge sample
 * at t keyed by the leaf. Two queries are exactly jointly Brownian unless they fall in the same leaf
 * (relative width ≈ ln(σ_max/σ_min)/2^TREE_DEPTH ≈ 1e-4 for SD1.5’s range, far below the ≥ 1 % σ ratio between
 * the steps of any schedule of ≤ 200 steps). Bit parity with torchsde is
 * out of scope.
 */
import type { Seed } from '@image-api/shared/seed';
import { deriveKey, fillNormals, normalAt, seedKey } from './counter-normals';
import type { NoiseSource } from './types';

/** Bisection depth of the tree. */
export const TREE_DEPTH = 16;
/** How many recent W(t) vectors each image keeps (σ_{i+1} of one step is σ_i of the next). */
const CACHE_SIZE = 4;

export interface BrownianTreeNoiseOptions {
  /** One seed per image of the batch (uint64 seeds, shared/src/seed.ts). */
  seeds: readonly Seed[];
  /** Elements per image (C·H·W of the latents). */
  perImageNumel: number;
  /** Smallest non-zero sigma of the schedule (> 0). */
  sigmaMin: number;
  /** Largest sigma of the schedule (> sigmaMin). */
  sigmaMax: number;
  /** Kind of the returned tensors (default 'float32'). */
  dtype?: 'float32' | 'float64';
}

/** One image's Brownian motion W on [a, b]. */
class BrownianTree {
  private readonly rootKey: [number, number];
  private readonly wEnd: Float64Array;
  private readonly cache = new Map<number, Float64Array>();

  constructor(
    seed: Seed,
    private readonly numel: number,
    private readonly a: number,
    private readonly b: number,
  ) {
    this.rootKey = seedKey(seed);
    this.wEnd = new Float64Array(numel);
    const [k0, k1] = deriveKey(this.rootKey[0], this.rootKey[1], 2);
    fillNormals(this.wEnd, 0, numel, k0, k1);
    const scale = Math.sqrt(b - a);
    for (let k = 0; k < numel; k++) this.wEnd[k] *= scale;
  }

  /** W(t) for t ∈ [a, b]; a pure function of (seed, t). The returned array must not be mutated. */
  at(t: number): Float64Array {
    const hit = this.cache.get(t);
    if (hit) return hit;
    const value = this.compute(t);
    this.cache.set(t, value);
    if (this.cache.size > CACHE_SIZE) this.cache.delete(this.cache.keys().next().value as number);
    return value;
  }

  private compute(t: number): Float64Array {
    const n = this.numel;
    if (t === this.a) return new Float64Array(n); // W(σ_min) = 0
    if (t === this.b) return Float64Array.from(this.wEnd);
    let l = this.a;
    let r = this.b;
    // Three buffers, no allocation per level: wl, wr, and the scratch the next midpoint goes into.
    let wl = new Float64Array(n);
    let wr = Float64Array.from(this.wEnd);
    let scratch = new Float64Array(n);
    let [k0, k1] = this.rootKey;
    for (let depth = 0; depth < TREE_DEPTH; depth++) {
      const m = Math.sqrt(l * r);
      if (!(m > l && m < r)) break; // interval too narrow to split in float64
      const w = (m - l) / (r - l);
      const sd = Math.sqrt(((m - l) * (r - m)) / (r - l));
      for (let k = 0; k < n; k++) scratch[k] = wl[k] + w * (wr[k] - wl[k]) + sd * normalAt(k0, k1, k);
      if (t === m) return scratch;
      if (t < m) {
        r = m;
        [wr, scratch] = [scratch, wr];
        [k0, k1] = deriveKey(k0, k1, 0);
      } else {
        l = m;
        [wl, scratch] = [scratch, wl];
        [k0, k1] = deriveKey(k0, k1, 1);
      }
    }
    // Bridge sample inside the leaf [l, r].
    const [q0, q1] = deriveKey(k0, k1, 3);
    const w = (t - l) / (r - l);
    const sd = Math.sqrt(((t - l) * (r - t)) / (r - l));
    for (let k = 0; k < n; k++) scratch[k] = wl[k] + w * (wr[k] - wl[k]) + sd * normalAt(q0, q1, k);
    return scratch;
  }
}

/**
 * Build a Brownian-tree NoiseSource for a batch: image i uses its own tree seeded by seeds[i], so it is the
 * same alone or in a batch. The source returns seeds.length × perImageNumel values (image-major).
 * Query sigmas must lie in [sigmaMin, sigmaMax] (values outside by < 1e-9 relative, e.g. e^{−(−ln σ)}
 * rounding, are clamped).
 * @throws RangeError for invalid options at construction; RangeError at call time for sigmas outside the
 *   range or σ = σ'.
 */
export function createBrownianTreeNoise(options: BrownianTreeNoiseOptions): NoiseSource {
  const { seeds, perImageNumel, sigmaMin, sigmaMax } = options;
  if (seeds.length === 0) throw new RangeError('createBrownianTreeNoise needs at least one seed');
  if (!Number.isInteger(perImageNumel) || perImageNumel <= 0) throw new RangeError(`perImageNumel must be a positive integer, got ${perImageNumel}`);
  if (!(sigmaMin > 0) || !(sigmaMax > sigmaMin) || !Number.isFinite(sigmaMax)) {
    throw new RangeError(`need 0 < sigmaMin < sigmaMax < ∞, got sigmaMin = ${sigmaMin}, sigmaMax = ${sigmaMax}`);
  }
  const trees = seeds.map((seed) => new BrownianTree(seed, perImageNumel, sigmaMin, sigmaMax));
  const slack = 1e-9 * sigmaMax;
  const clamp = (s: number): number => {
    if (!(s >= sigmaMin - slack && s <= sigmaMax + slack)) {
      throw new RangeError(`Brownian tree queried at sigma = ${s}, outside [${sigmaMin}, ${sigmaMax}]`);
    }
    return Math.min(sigmaMax, Math.max(sigmaMin, s));
  };
  const dtype = options.dtype ?? 'float32';
  return function brownianTreeNoise(sigma: number, sigmaNext: number) {
    const t0 = clamp(sigma);
    const t1 = clamp(sigmaNext);
    if (t0 === t1) throw new RangeError(`Brownian noise needs two different sigmas, got ${sigma} twice`);
    const scale = 1 / Math.sqrt(Math.abs(t1 - t0));
    const out = dtype === 'float64' ? new Float64Array(trees.length * perImageNumel) : new Float32Array(trees.length * perImageNumel);
    trees.forEach((tree, i) => {
      const w0 = tree.at(t0);
      const w1 = tree.at(t1);
      const base = i * perImageNumel;
      for (let k = 0; k < perImageNumel; k++) out[base + k] = (w1[k] - w0[k]) * scale;
    });
    return out;
  };
}
