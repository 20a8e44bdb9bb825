import { describe, expect, it } from 'vitest';
import { gits, GITS_LEVELS_1_20 } from '../../../gpu-service/src/diffusion/schedules/gits';
import { SD15 } from './sd15';

const f = Math.fround;

describe('gits (coefficient 1.20)', () => {
  it('uses the tabulated row for 2 ≤ N ≤ 20 with the last level replaced by 0', () => {
    expect(Array.from(gits(SD15, 2))).toEqual([f(14.61464119), f(0.803307), 0]);
    expect(Array.from(gits(SD15, 5))).toEqual([14.61464119, 2.84484982, 1.24153244, 0.59516323, 0.25053367].map(f).concat([0]));
    const row10 = [14.61464119, 5.85520077, 2.84484982, 1.67050016, 1.08895338, 0.74807048, 0.50118381, 0.32104823, 0.19894916, 0.09824532];
    expect(Array.from(gits(SD15, 10))).toEqual(row10.map(f).concat([0]));
    for (let N = 2; N <= 20; N++) {
      const row = GITS_LEVELS_1_20[N - 2];
      expect(row.length).toBe(N + 1);
      expect(Array.from(gits(SD15, N))).toEqual([...row.slice(0, N).map(f), 0]);
    }
  });

  it('resamples the N = 20 row log-linearly for N > 20', () => {
    const row20 = GITS_LEVELS_1_20[18];
    const s = gits(SD15, 40);
    expect(s.length).toBe(41);
    for (let j = 0; j < 20; j++) expect(s[2 * j]).toBe(f(row20[j]));
    for (let j = 0; j < 20; j++) expect(s[2 * j + 1]).toBeCloseTo(Math.sqrt(row20[j] * row20[j + 1]), 6);
    expect(s[40]).toBe(0);
    const s21 = gits(SD15, 21);
    expect(s21.length).toBe(22);
    expect(s21[0]).toBe(f(14.61464119));
  });

  it('rejects N = 1 (there is no one-step row)', () => {
    expect(() => gits(SD15, 1)).toThrow(/\[2, /);
  });
});
