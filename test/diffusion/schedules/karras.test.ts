import { describe, expect, it } from 'vitest';
import { exponential } from '../../../gpu-service/src/diffusion/schedules/exponential';
import { createKarrasSchedule, karras } from '../../../gpu-service/src/diffusion/schedules/karras';
import { modelScheduleFromConfig } from '../../../gpu-service/src/diffusion/schedules/model-schedule';
import { createPolyexponentialSchedule, polyexponential } from '../../../gpu-service/src/diffusion/schedules/polyexponential';
import { SD15 } from './sd15';

describe('karras (ρ = 7)', () => {
  it('follows (a + k/(N−1)·(b − a))^7 between the table ends', () => {
    const a = SD15.sigmaMax ** (1 / 7);
    const b = SD15.sigmaMin ** (1 / 7);
    const s = karras(SD15, 10);
    for (let k = 0; k < 10; k++) expect(s[k]).toBe(Math.fround((a + (k / 9) * (b - a)) ** 7));
    expect(s[0]).toBe(SD15.sigmaMax);
    expect(s[9]).toBe(SD15.sigmaMin);
  });

  it('gives the familiar SD1.5 "DPM++ 2M Karras" 10-step sigmas', () => {
    const expected = [14.6146, 9.1029, 5.4784, 3.1686, 1.7494, 0.9141, 0.4469, 0.2014, 0.0819, 0.0292, 0];
    karras(SD15, 10).forEach((v, k) => expect(v).toBeCloseTo(expected[k], 4));
    expect(Array.from(karras(SD15, 1))).toEqual([SD15.sigmaMax, 0]);
  });

  it("uses the model's own σ_min/σ_max for another table", () => {
    const v = modelScheduleFromConfig({ beta_schedule: 'linear', beta_start: 0.0001, beta_end: 0.02 });
    const s = karras(v, 5);
    expect(s[0]).toBeCloseTo(v.sigmaMax, 3);
    expect(s[4]).toBeCloseTo(v.sigmaMin, 6);
    expect(() => createKarrasSchedule(0)).toThrow(RangeError);
  });
});

describe('exponential and polyexponential', () => {
  it('exponential has a constant ratio between consecutive sigmas', () => {
    const s = exponential(SD15, 20);
    const ratio = Math.exp(Math.log(SD15.sigmaMin / SD15.sigmaMax) / 19);
    for (let k = 1; k < 20; k++) expect(s[k] / s[k - 1]).toBeCloseTo(ratio, 6);
    expect(s[0]).toBe(SD15.sigmaMax);
    expect(s[19]).toBe(SD15.sigmaMin);
  });

  it('polyexponential with ρ = 1 is the exponential schedule', () => {
    const e = exponential(SD15, 15);
    polyexponential(SD15, 15).forEach((v, k) => expect(Math.abs(v - e[k])).toBeLessThanOrEqual(2e-7 * e[k]));
  });

  it('polyexponential with ρ = 2 follows exp(r²·(ln σ_max − ln σ_min) + ln σ_min)', () => {
    const s = createPolyexponentialSchedule(2)(SD15, 5);
    const span = Math.log(SD15.sigmaMax / SD15.sigmaMin);
    [1, 0.75, 0.5, 0.25, 0].forEach((r, k) => expect(s[k]).toBeCloseTo(SD15.sigmaMin * Math.exp(r * r * span), 5));
    expect(() => createPolyexponentialSchedule(-1)).toThrow(RangeError);
  });
});
