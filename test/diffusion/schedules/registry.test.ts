import { describe, expect, it } from 'vitest';
import { getSchedule, SCHEDULE_IDS, schedules } from '../../../gpu-service/src/diffusion/schedules';
import { CANONICAL_SCHEDULE_IDS } from '@image-api/shared/sampler-names';
import { SD15 } from './sd15';

const STEP_COUNTS = [1, 2, 3, 7, 10, 20, 25, 30, 50, 150];

describe('every schedule', () => {
  it('registers exactly the canonical ids', () => {
    expect([...SCHEDULE_IDS].sort()).toEqual(
      [
        'ays',
        'ays_sdxl',
        'beta',
        'ddim_uniform',
        'exponential',
        'gits',
        'karras',
        'normal',
        'normal_no_final_zero',
        'polyexponential',
        'sgm_uniform',
        'simple',
      ].sort(),
    );
  });

  it('serves every canonical schedule id the shared name table can resolve to', () => {
    expect([...SCHEDULE_IDS].sort()).toEqual([...CANONICAL_SCHEDULE_IDS].sort());
  });

  for (const id of SCHEDULE_IDS) {
    it(`${id}: length, strictly decreasing, float32 values, σ_max start, final 0`, () => {
      const fn = schedules[id];
      for (const N of STEP_COUNTS) {
        if (id === 'gits' && N < 2) continue;
        const s = fn(SD15, N);
        // Length: N+1, except ddim_uniform (may be longer) and beta (may be shorter).
        if (id === 'ddim_uniform') expect(s.length).toBeGreaterThanOrEqual(N + 1);
        else if (id === 'beta') expect(s.length).toBeLessThanOrEqual(N + 1);
        else expect(s.length).toBe(N + 1);
        for (let k = 1; k < s.length; k++) expect(s[k]).toBeLessThan(s[k - 1]);
        for (const v of s) expect(Math.fround(v)).toBe(v);
        if (id === 'normal_no_final_zero') expect(s[s.length - 1]).toBe(SD15.sigmaMin);
        else expect(s[s.length - 1]).toBe(0);
        // First entry: σ_max everywhere except ddim_uniform, which never includes σ_999.
        if (id === 'ddim_uniform') expect(s[0]).toBeLessThan(SD15.sigmaMax);
        else expect(Math.abs(s[0] - SD15.sigmaMax) / SD15.sigmaMax).toBeLessThan(1e-7);
        // Last non-zero entry near σ_min for the schedules that span the whole table.
        if (['normal', 'karras', 'exponential', 'polyexponential', 'normal_no_final_zero'].includes(id) && N >= 2) {
          expect(Math.abs(s[N - (id === 'normal_no_final_zero' ? 0 : 1)] - SD15.sigmaMin) / SD15.sigmaMin).toBeLessThan(1e-6);
        }
      }
    });

    it(`${id}: rejects step counts it cannot serve`, () => {
      const fn = schedules[id];
      for (const bad of [0, -1, 2.5, Number.NaN, 10_001]) expect(() => fn(SD15, bad)).toThrow(RangeError);
    });
  }

  it('getSchedule returns the function or lists the accepted ids', () => {
    expect(getSchedule('karras')).toBe(schedules.karras);
    expect(() => getSchedule('discrete')).toThrow(/unknown schedule "discrete"; accepted: normal, karras/);
    expect(() => getSchedule('toString')).toThrow(RangeError);
  });
});
