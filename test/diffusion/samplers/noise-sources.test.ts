/**
 * The noise sources of docs/samplers.md §0.3: per-image i.i.d. draws, and the seeded Brownian tree
 * (deterministic in the seed, independent of query order, per image, Brownian increments).
 */
import { describe, expect, it } from 'vitest';
import { createBrownianTreeNoise, createIidNoise } from '../../../gpu-service/src/diffusion/samplers';
import { fillNormals, inverseNormalCdf, seedKey } from '../../../gpu-service/src/diffusion/samplers/counter-normals';
import { karras, maxAbsDiff, moments, seededNormalGenerator } from './helpers';

const NUMEL = 20000;
const SIGMAS = karras(8);
const range = { sigmaMin: SIGMAS[SIGMAS.length - 1], sigmaMax: SIGMAS[0] };

function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const ma = moments(a);
  const mb = moments(b);
  let c = 0;
  for (let k = 0; k < a.length; k++) c += (a[k] - ma.mean) * (b[k] - mb.mean);
  return c / a.length / Math.sqrt(ma.variance * mb.variance);
}

describe('createIidNoise', () => {
  it('concatenates one draw per image, so image i gets the same noise alone or in a batch', () => {
    const batch = createIidNoise([seededNormalGenerator(10), seededNormalGenerator(11)], 50);
    const alone = createIidNoise([seededNormalGenerator(11)], 50);
    for (let call = 0; call < 3; call++) {
      const b = batch(1, 0.5);
      const a = alone(1, 0.5);
      expect(b).toHaveLength(100);
      expect(Array.from(b.subarray(50))).toEqual(Array.from(a));
    }
  });

  it('continues each generator stream (successive calls differ) and rejects bad arguments', () => {
    const noise = createIidNoise([seededNormalGenerator(3)], 10);
    expect(maxAbsDiff(noise(2, 1), noise(1, 0.5))).toBeGreaterThan(0);
    expect(() => createIidNoise([], 10)).toThrow(RangeError);
    expect(() => createIidNoise([seededNormalGenerator(1)], 0)).toThrow(RangeError);
    const short = { kind: 'cpu' as const, seed: 0, randn: () => new Float32Array(3) };
    expect(() => createIidNoise([short], 10)(1, 0.5)).toThrow(RangeError);
  });
});

describe('createBrownianTreeNoise', () => {
  const make = (seeds: number[], numel = NUMEL) => createBrownianTreeNoise({ seeds, perImageNumel: numel, ...range, dtype: 'float64' });

  it('each call returns unit normals', () => {
    const noise = make([1]);
    for (let i = 0; i < SIGMAS.length - 1; i++) {
      const m = moments(noise(SIGMAS[i], SIGMAS[i + 1]));
      expect(Math.abs(m.mean)).toBeLessThan(4 / Math.sqrt(NUMEL));
      expect(Math.abs(m.variance - 1)).toBeLessThan(0.04);
    }
  });

  it('is deterministic in the seed and independent of the query order', () => {
    const forward = make([7]);
    const a = SIGMAS.slice(0, -1).map((s, i) => forward(s, SIGMAS[i + 1]));
    const backward = make([7]);
    const b: Float64Array[] = [];
    for (let i = SIGMAS.length - 2; i >= 0; i--) b[i] = backward(SIGMAS[i], SIGMAS[i + 1]) as Float64Array;
    a.forEach((v, i) => expect(maxAbsDiff(v, b[i])).toBe(0));
    // A fresh source with extra queries in between answers the same too.
    const mixed = make([7]);
    mixed(SIGMAS[3], SIGMAS[0]);
    expect(maxAbsDiff(mixed(SIGMAS[2], SIGMAS[3]), a[2])).toBe(0);
    expect(maxAbsDiff(make([8])(SIGMAS[2], SIGMAS[3]), a[2])).toBeGreaterThan(0.1);
  });

  it('is one Brownian motion: increments add up exactly and are stable across step counts', () => {
    const noise = make([3], 1000);
    const [a, b, c] = [SIGMAS[1], SIGMAS[3], SIGMAS[6]];
    const whole = noise(a, c);
    const first = noise(a, b);
    const second = noise(b, c);
    const sum = Float64Array.from(first, (v, k) => v * Math.sqrt(a - b) + second[k] * Math.sqrt(b - c));
    expect(maxAbsDiff(Float64Array.from(whole, (v) => v * Math.sqrt(a - c)), sum)).toBeLessThan(1e-10);
    // Reversed arguments flip the sign.
    expect(maxAbsDiff(noise(c, a), Float64Array.from(whole, (v) => -v))).toBeLessThan(1e-12);
  });

  it('has Brownian correlations: disjoint increments independent, nested ones corr = sqrt(Δ_inner/Δ_outer)', () => {
    const noise = make([11]);
    const [a, b, c] = [SIGMAS[0], SIGMAS[2], SIGMAS[5]];
    expect(Math.abs(correlation(noise(a, b), noise(b, c)))).toBeLessThan(0.03);
    const expected = Math.sqrt((a - b) / (a - c));
    expect(Math.abs(correlation(noise(a, b), noise(a, c)) - expected)).toBeLessThan(0.03);
    // Also at points strictly inside the tree (a midpoint query, as dpmpp_sde makes).
    const mid = Math.sqrt(SIGMAS[4] * SIGMAS[5]);
    expect(Math.abs(correlation(noise(SIGMAS[4], mid), noise(mid, SIGMAS[5])))).toBeLessThan(0.03);
    expect(Math.abs(moments(noise(SIGMAS[4], mid)).variance - 1)).toBeLessThan(0.04);
  });

  it('gives image i the same noise alone or in a batch', () => {
    const batch = make([5, 9], 300);
    const alone = make([9], 300);
    const b = batch(SIGMAS[1], SIGMAS[2]);
    expect(b).toHaveLength(600);
    expect(maxAbsDiff(b.subarray(300), alone(SIGMAS[1], SIGMAS[2]))).toBe(0);
    expect(maxAbsDiff(b.subarray(0, 300), b.subarray(300))).toBeGreaterThan(0.1);
  });

  it('returns float32 by default; rejects queries outside [σ_min, σ_max] but tolerates rounding at the ends', () => {
    const noise = createBrownianTreeNoise({ seeds: [1], perImageNumel: 10, ...range });
    expect(noise(SIGMAS[0], SIGMAS[1])).toBeInstanceOf(Float32Array);
    expect(() => noise(range.sigmaMax * 1.01, SIGMAS[1])).toThrow(RangeError);
    expect(() => noise(SIGMAS[1], range.sigmaMin / 2)).toThrow(RangeError);
    expect(() => noise(SIGMAS[1], 0)).toThrow(RangeError);
    expect(() => noise(SIGMAS[1], SIGMAS[1])).toThrow(RangeError);
    expect(noise(range.sigmaMax * (1 + 1e-13), SIGMAS[1])).toHaveLength(10);
    expect(() => createBrownianTreeNoise({ seeds: [1], perImageNumel: 10, sigmaMin: 0, sigmaMax: 1 })).toThrow(RangeError);
    expect(() => createBrownianTreeNoise({ seeds: [], perImageNumel: 10, ...range })).toThrow(RangeError);
    expect(() => createBrownianTreeNoise({ seeds: [1.5], perImageNumel: 10, ...range })).toThrow(RangeError);
  });
});

describe('counter-based normals', () => {
  it('inverse normal CDF matches reference quantiles', () => {
    expect(inverseNormalCdf(0.5)).toBe(0);
    expect(inverseNormalCdf(0.975)).toBeCloseTo(1.959963984540054, 8);
    expect(inverseNormalCdf(0.001)).toBeCloseTo(-3.090232306167814, 8);
    expect(inverseNormalCdf(0.8413447460685429)).toBeCloseTo(1, 8);
    expect(inverseNormalCdf(1e-9)).toBeCloseTo(-5.997807015007686, 6);
  });

  it('fillNormals is a pure function of (key, index) with unit moments', () => {
    const [k0, k1] = seedKey(123);
    const a = new Float64Array(50000);
    fillNormals(a, 0, a.length, k0, k1);
    const b = new Float64Array(10);
    fillNormals(b, 0, 10, k0, k1);
    expect(Array.from(b)).toEqual(Array.from(a.subarray(0, 10)));
    const m = moments(a);
    expect(Math.abs(m.mean)).toBeLessThan(0.02);
    expect(Math.abs(m.variance - 1)).toBeLessThan(0.03);
    expect(correlation(a.subarray(0, 49999), a.subarray(1))).toBeLessThan(0.02);
    expect(seedKey(2 ** 40)).not.toEqual(seedKey(0));
    expect(() => seedKey(-1)).toThrow(RangeError);
  });
});
