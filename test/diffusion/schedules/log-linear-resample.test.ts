import { describe, expect, it } from 'vitest';
import { linspace } from '../../../gpu-service/src/diffusion/schedules/linspace';
import { logLinearResample } from '../../../gpu-service/src/diffusion/schedules/log-linear-resample';

describe('linspace', () => {
  it('includes both ends exactly and is evenly spaced', () => {
    expect(Array.from(linspace(999, 0, 4))).toEqual([999, 666, 333, 0]);
    expect(Array.from(linspace(0, 1, 1))).toEqual([0]);
    const v = linspace(Math.log(14.6), Math.log(0.029), 7);
    expect(v[0]).toBe(Math.log(14.6));
    expect(v[6]).toBe(Math.log(0.029));
    expect(() => linspace(0, 1, 0)).toThrow(RangeError);
  });
});

describe('logLinearResample', () => {
  it('reproduces the levels when the count is unchanged', () => {
    expect(Array.from(logLinearResample([8, 4, 1], 3))).toEqual([8, 4, 1]);
  });

  it('inserts geometric means when doubling and keeps both ends', () => {
    const s = logLinearResample([16, 4, 1], 5);
    [16, 8, 4, 2, 1].forEach((v, k) => expect(s[k]).toBeCloseTo(v, 12));
    expect(s[0]).toBe(16);
    expect(s[4]).toBe(1);
  });

  it('interpolates log σ at non-knot positions', () => {
    const s = logLinearResample([100, 1], 4); // ln σ linear: 100, 100^(2/3), 100^(1/3), 1
    expect(s[1]).toBeCloseTo(100 ** (2 / 3), 10);
    expect(s[2]).toBeCloseTo(100 ** (1 / 3), 10);
    expect(() => logLinearResample([1], 3)).toThrow(RangeError);
  });
});
