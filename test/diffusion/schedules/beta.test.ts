import { describe, expect, it } from 'vitest';
import { beta, createBetaSchedule } from '../../../gpu-service/src/diffusion/schedules/beta';
import {
  inverseRegularizedIncompleteBeta,
  logGamma,
  regularizedIncompleteBeta,
} from '../../../gpu-service/src/diffusion/schedules/incomplete-beta';
import { SD15 } from './sd15';

const indexOf = (s: Float64Array) => Array.from(s.subarray(0, s.length - 1)).map((v) => SD15.sigmas.indexOf(v));

describe('incomplete beta', () => {
  it('logGamma matches factorials and Γ(½) = √π', () => {
    expect(logGamma(1)).toBeCloseTo(0, 14);
    expect(logGamma(5)).toBeCloseTo(Math.log(24), 13);
    expect(logGamma(0.5)).toBeCloseTo(0.5 * Math.log(Math.PI), 13);
    expect(logGamma(0.6)).toBeCloseTo(0.3982338580692348, 12); // ln Γ(0.6), Γ(0.6) = 1.4891922488128171
  });

  it('matches closed forms: uniform, power, arcsine', () => {
    for (const x of [0.01, 0.2, 0.5, 0.77, 0.999]) {
      expect(regularizedIncompleteBeta(x, 1, 1)).toBeCloseTo(x, 13);
      expect(regularizedIncompleteBeta(x, 3, 1)).toBeCloseTo(x ** 3, 13);
      expect(regularizedIncompleteBeta(x, 1, 2.5)).toBeCloseTo(1 - (1 - x) ** 2.5, 13);
      expect(regularizedIncompleteBeta(x, 0.5, 0.5)).toBeCloseTo((2 / Math.PI) * Math.asin(Math.sqrt(x)), 13);
      expect(regularizedIncompleteBeta(x, 0.6, 0.6) + regularizedIncompleteBeta(1 - x, 0.6, 0.6)).toBeCloseTo(1, 13);
    }
  });

  it('inverts to better than 1e-12 (arcsine quantile sin²(πp/2))', () => {
    for (const p of [1e-6, 0.05, 0.3, 0.5, 0.9, 0.999999]) {
      expect(Math.abs(inverseRegularizedIncompleteBeta(p, 0.5, 0.5) - Math.sin((Math.PI * p) / 2) ** 2)).toBeLessThan(1e-12);
      const q = inverseRegularizedIncompleteBeta(p, 0.6, 0.6);
      expect(Math.abs(regularizedIncompleteBeta(q, 0.6, 0.6) - p)).toBeLessThan(1e-12);
    }
    expect(inverseRegularizedIncompleteBeta(0, 0.6, 0.6)).toBe(0);
    expect(inverseRegularizedIncompleteBeta(1, 0.6, 0.6)).toBe(1);
    expect(() => inverseRegularizedIncompleteBeta(1.5, 0.6, 0.6)).toThrow(RangeError);
  });
});

describe('beta schedule (α = β = 0.6)', () => {
  it('N = 10 → table indices 999, 959, 876, 765, 637, 500, 362, 234, 123, 40', () => {
    const s = beta(SD15, 10);
    expect(s.length).toBe(11);
    expect(indexOf(s)).toEqual([999, 959, 876, 765, 637, 500, 362, 234, 123, 40]);
    expect(s[10]).toBe(0);
  });

  it('puts the exact u = ½ tie on index 500 for every even N', () => {
    for (const N of [2, 4, 10, 30, 64, 100]) {
      const idx = indexOf(beta(SD15, N));
      expect(idx.length).toBe(N); // no colliding timesteps for SD1.5 at these N
      expect(idx[N / 2]).toBe(500);
    }
    // N = 150: two timesteps collide near an end, the tie still lands on 500
    const idx150 = indexOf(beta(SD15, 150));
    expect(idx150.length).toBe(149);
    expect(idx150).toContain(500);
    expect(idx150).not.toContain(499);
  });

  it('N = 30 keeps 30 distinct steps and N = 1 is [σ_max, 0]', () => {
    expect(beta(SD15, 30).length).toBe(31);
    expect(Array.from(beta(SD15, 1))).toEqual([SD15.sigmaMax, 0]);
  });

  it('skips repeated timesteps when N is large', () => {
    const s = createBetaSchedule(0.6, 0.6)(SD15, 2000);
    expect(s.length).toBeLessThan(2001);
    for (let k = 1; k < s.length; k++) expect(s[k]).toBeLessThan(s[k - 1]);
  });
});
