import { describe, expect, it } from 'vitest';
import { buildSigmas, schedules } from '../../../gpu-service/src/diffusion/schedules';
import { SD15 } from './sd15';

describe('buildSigmas', () => {
  it('returns the schedule itself by default, as a fresh array', () => {
    const s = buildSigmas(SD15, 'karras', 12);
    expect(s).toEqual(schedules.karras(SD15, 12));
    s[0] = 1;
    expect(buildSigmas(SD15, 'karras', 12)[0]).toBe(SD15.sigmaMax);
  });

  it('discard penultimate: build for N+1 and drop entry L−2 (docs/samplers.md §1.3)', () => {
    for (const id of ['normal', 'karras', 'exponential', 'sgm_uniform', 'simple', 'beta', 'ays', 'gits']) {
      const longer = schedules[id](SD15, 11);
      const s = buildSigmas(SD15, id, 10, { discardPenultimate: true });
      expect(s.length).toBe(longer.length - 1);
      expect(Array.from(s)).toEqual([...longer.subarray(0, longer.length - 2), 0]);
    }
  });

  it('discard penultimate with ddim_uniform keeps its extra steps: N = 10 → 11 steps', () => {
    const s = buildSigmas(SD15, 'ddim_uniform', 10, { discardPenultimate: true });
    expect(s.length).toBe(12); // 12-step list (stride 90, indices 991…1) minus one
    expect(s[0]).toBe(SD15.sigmas[991]);
    expect(s[10]).toBe(SD15.sigmas[91]); // σ_table[1] was the discarded one
    expect(s[11]).toBe(0);
  });

  it('denoise < 1 keeps the last steps+1 entries of the ⌊steps/denoise⌋ schedule (ComfyUI, §1.4)', () => {
    const s = buildSigmas(SD15, 'karras', 10, { denoise: 0.5 });
    expect(Array.from(s)).toEqual(Array.from(schedules.karras(SD15, 20).subarray(10)));
    const t = buildSigmas(SD15, 'normal', 7, { denoise: 0.3 }); // ⌊7/0.3⌋ = 23
    expect(Array.from(t)).toEqual(Array.from(schedules.normal(SD15, 23).subarray(16)));
    expect(t.length).toBe(8);
    expect(Array.from(buildSigmas(SD15, 'normal', 8, { denoise: 1 }))).toEqual(Array.from(schedules.normal(SD15, 8)));
  });

  it('applies the discard before taking the denoise tail', () => {
    const full = buildSigmas(SD15, 'karras', 20, { discardPenultimate: true });
    const s = buildSigmas(SD15, 'karras', 10, { discardPenultimate: true, denoise: 0.5 });
    expect(Array.from(s)).toEqual(Array.from(full.subarray(full.length - 11)));
  });

  it('throws RangeError for unknown ids, bad steps or denoise', () => {
    expect(() => buildSigmas(SD15, 'nope', 10)).toThrow(/accepted: normal/);
    expect(() => buildSigmas(SD15, 'normal', 0)).toThrow(RangeError);
    expect(() => buildSigmas(SD15, 'normal', 10, { denoise: 0 })).toThrow(RangeError);
    expect(() => buildSigmas(SD15, 'normal', 10, { denoise: 1.5 })).toThrow(RangeError);
    expect(() => buildSigmas(SD15, 'gits', 1)).toThrow(RangeError);
  });
});
