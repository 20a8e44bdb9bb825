import { describe, expect, it } from 'vitest';
import { ddimUniform } from '../../../gpu-service/src/diffusion/schedules/ddim-uniform';
import { simple } from '../../../gpu-service/src/diffusion/schedules/simple';
import { modelScheduleFromConfig } from '../../../gpu-service/src/diffusion/schedules/model-schedule';
import { SD15 } from './sd15';

const indexOf = (s: Float64Array) => Array.from(s.subarray(0, s.length - 1)).map((v) => SD15.sigmas.indexOf(v));

describe('simple', () => {
  it('takes table entries 999 − ⌊k·1000/N⌋', () => {
    expect(indexOf(simple(SD15, 10))).toEqual([999, 899, 799, 699, 599, 499, 399, 299, 199, 99]);
    expect(indexOf(simple(SD15, 3))).toEqual([999, 666, 333]);
    expect(indexOf(simple(SD15, 1))).toEqual([999]);
  });

  it('truncates the float64 product k·(1000/N) as ComfyUI does', () => {
    // 19·(1000/38) = 499.99999999999994 → 499 → table index 500 (the exact ⌊19000/38⌋ = 500 would give 499).
    expect(indexOf(simple(SD15, 38))[19]).toBe(500);
  });

  it('differs from sgm_uniform only in the 3rd–4th digit', () => {
    expect(simple(SD15, 10)[1]).toBeCloseTo(8.3028, 3);
  });

  it('refuses more steps than the table has entries', () => {
    const small = modelScheduleFromConfig({ num_train_timesteps: 10, trained_betas: Array.from({ length: 10 }, (_, i) => 0.01 * (i + 1)) });
    expect(simple(small, 10).length).toBe(11);
    expect(() => simple(small, 11)).toThrow(RangeError);
  });
});

describe('ddim_uniform', () => {
  it('N = 10: indices 901, 801, …, 1 (10 steps)', () => {
    const s = ddimUniform(SD15, 10);
    expect(s.length).toBe(11);
    expect(indexOf(s)).toEqual([901, 801, 701, 601, 501, 401, 301, 201, 101, 1]);
  });

  it('N = 30: stride 33, indices 991, 958, …, 1 → 31 steps', () => {
    const s = ddimUniform(SD15, 30);
    expect(s.length).toBe(32);
    const idx = indexOf(s);
    expect(idx[0]).toBe(991);
    expect(idx[1]).toBe(958);
    expect(idx[30]).toBe(1);
    expect(idx).not.toContain(999);
  });

  it('N = 1 gives [σ_table[1], 0]', () => {
    expect(Array.from(ddimUniform(SD15, 1))).toEqual([SD15.sigmas[1], 0]);
  });
});
