import { describe, expect, it } from 'vitest';
import { buildSigmas } from '../../../gpu-service/src/diffusion/schedules/build-sigmas';
import { normal } from '../../../gpu-service/src/diffusion/schedules/normal';
import { normalNoFinalZero } from '../../../gpu-service/src/diffusion/schedules/normal-no-final-zero';
import { sgmUniform } from '../../../gpu-service/src/diffusion/schedules/sgm-uniform';
import { SD15 } from './sd15';

/** σ(t) by the §1.2 formula on the table, rounded to float32 like the schedules. */
function sigmaAt(t: number): number {
  const lo = Math.floor(t);
  const w = t - lo;
  if (w === 0) return SD15.sigmas[lo];
  return Math.fround(Math.exp((1 - w) * Math.log(SD15.sigmas[lo]) + w * Math.log(SD15.sigmas[lo + 1])));
}

describe('normal (= sd.cpp discrete, A1111 Automatic)', () => {
  it('uses σ at linspace(999, 0, N): table entries when the grid is integral', () => {
    const s = normal(SD15, 10); // t = 999, 888, …, 0
    expect(Array.from(s.subarray(0, 10))).toEqual(Array.from({ length: 10 }, (_, k) => SD15.sigmas[999 - 111 * k]));
    expect(s[10]).toBe(0);
    expect(Array.from(normal(SD15, 1))).toEqual([SD15.sigmaMax, 0]);
  });

  it('log-interpolates between table entries elsewhere', () => {
    const s = normal(SD15, 3); // t = 999, 499.5, 0
    expect(s[1]).toBe(Math.fround(Math.sqrt(SD15.sigmas[499] * SD15.sigmas[500])));
    const s7 = normal(SD15, 7);
    for (let k = 0; k < 7; k++) expect(s7[k]).toBeCloseTo(sigmaAt(999 - (999 * k) / 6), 6);
  });

  it('matches the well-known SD1.5 10-step values', () => {
    const expected = [14.6146, 7.8399, 4.6092, 2.9183, 1.9502, 1.3449, 0.9324, 0.625, 0.3687, 0.0292, 0];
    normal(SD15, 10).forEach((v, k) => expect(v).toBeCloseTo(expected[k], 4));
  });
});

describe('sgm_uniform', () => {
  it('uses σ at linspace(999, 0, N+1) without its last point', () => {
    const s = sgmUniform(SD15, 10);
    for (let k = 0; k < 10; k++) expect(s[k]).toBeCloseTo(sigmaAt(999 - 99.9 * k), 6);
    expect(s[10]).toBe(0);
  });

  it('equals normal(N+1) with its second-to-last entry removed, exactly', () => {
    for (let N = 1; N <= 40; N++) {
      const longer = normal(SD15, N + 1);
      const removed = [...longer.subarray(0, N), longer[N + 1]];
      expect(Array.from(sgmUniform(SD15, N))).toEqual(removed);
      expect(Array.from(buildSigmas(SD15, 'normal', N, { discardPenultimate: true }))).toEqual(removed);
    }
  });
});

describe('normal_no_final_zero (A1111 UniPC grid)', () => {
  it('is normal(N+1) without its trailing zero, ending at σ_min', () => {
    for (const N of [1, 5, 10, 20]) {
      const s = normalNoFinalZero(SD15, N);
      expect(Array.from(s)).toEqual(Array.from(normal(SD15, N + 1).subarray(0, N + 1)));
      expect(s[N]).toBe(SD15.sigmaMin);
    }
  });
});
