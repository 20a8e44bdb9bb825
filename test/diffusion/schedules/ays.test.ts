import { describe, expect, it } from 'vitest';
import { AYS_SD15_LEVELS, AYS_SDXL_LEVELS, ays, aysSdxl } from '../../../gpu-service/src/diffusion/schedules/ays';
import { modelScheduleFromConfig } from '../../../gpu-service/src/diffusion/schedules/model-schedule';
import { SD15 } from './sd15';

const f = Math.fround;

describe('ays', () => {
  it('N = 10 is the SD1.5 table with its last level replaced by 0', () => {
    expect(Array.from(ays(SD15, 10))).toEqual([...AYS_SD15_LEVELS.slice(0, 10).map(f), 0]);
    expect(Array.from(aysSdxl(SD15, 10))).toEqual([...AYS_SDXL_LEVELS.slice(0, 10).map(f), 0]);
  });

  it('N = 20 matches the docs/samplers.md example and interpolates in log σ', () => {
    const s = ays(SD15, 20);
    expect(s.length).toBe(21);
    const expected = [14.6146412, 9.7274666, 6.4745761];
    expected.forEach((v, k) => expect(s[k]).toBeCloseTo(v, 6));
    expect(s[18]).toBeCloseTo(0.1515233, 6);
    expect(s[19]).toBeCloseTo(0.0664793, 6);
    expect(s[20]).toBe(0);
    // every even entry is a table level, every odd one the geometric mean of its neighbours
    for (let j = 0; j < 10; j++) expect(s[2 * j]).toBe(f(AYS_SD15_LEVELS[j]));
    for (let j = 0; j < 9; j++) expect(s[2 * j + 1]).toBeCloseTo(Math.sqrt(AYS_SD15_LEVELS[j] * AYS_SD15_LEVELS[j + 1]), 6);
    expect(s[19]).toBeCloseTo(Math.sqrt(AYS_SD15_LEVELS[9] * AYS_SD15_LEVELS[10]), 6);
  });

  it('N = 5 picks every other level (down-sampling)', () => {
    expect(Array.from(ays(SD15, 5))).toEqual([0, 2, 4, 6, 8].map((j) => f(AYS_SD15_LEVELS[j])).concat([0]));
  });

  it('N = 1 is [σ_max, 0] and the tables ignore the model σ table', () => {
    expect(Array.from(ays(SD15, 1))).toEqual([f(14.6146412293), 0]);
    const other = modelScheduleFromConfig({ beta_schedule: 'linear' });
    expect(ays(other, 7)).toEqual(ays(SD15, 7));
  });
});
