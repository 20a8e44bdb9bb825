/**
 * The sampler registry and the behaviour every sampler shares: pure (input untouched), output of the
 * input's kind, onStep per step, abort between steps, sigma validation, float32 close to float64.
 */
import { describe, expect, it } from 'vitest';
import { getSampler, isStochastic, samplers } from '../../../gpu-service/src/diffusion/samplers';
import type { StepInfo } from '../../../gpu-service/src/diffusion/samplers/types';
import { CANONICAL_SAMPLER_IDS, NAME_STYLES, SAMPLER_NAMES, SCHEDULER_NAMES, resolveSampler } from '@image-api/shared/sampler-names';
import { gaussianDenoiser, karras, maxAbsDiff, mixtureDenoiser, normals64, recordingNoise, withZero } from './helpers';

const SIGMAS = withZero(karras(5));
const X64 = Float64Array.from(normals64(2, 32), (v) => v * SIGMAS[0]);
const DENOISE = () => mixtureDenoiser([
  { weight: 0.5, mu: -1, s: 0.5 },
  { weight: 0.5, mu: 1, s: 0.5 },
]);

describe('registry', () => {
  it('has every canonical id, keyed by its own id; getSampler finds them', () => {
    expect(Object.keys(samplers).sort()).toEqual([...CANONICAL_SAMPLER_IDS].sort());
    for (const id of CANONICAL_SAMPLER_IDS) {
      expect(samplers[id].id).toBe(id);
      expect(getSampler(id)).toBe(samplers[id]);
    }
  });

  it('getSampler rejects unknown ids with a RangeError that lists the accepted ids', () => {
    expect(() => getSampler('euler_a')).toThrow(RangeError);
    let message = '';
    try {
      getSampler('nope');
    } catch (e) {
      message = (e as Error).message;
    }
    for (const id of CANONICAL_SAMPLER_IDS) expect(message).toContain(id);
    expect(() => getSampler('toString')).toThrow(RangeError);
  });

  it('every public name of every style resolves to a registered sampler', () => {
    for (const style of NAME_STYLES) {
      for (const name of SAMPLER_NAMES[style]) {
        const r = resolveSampler(style, name, SCHEDULER_NAMES[style][0]);
        expect(getSampler(r.sampler).id).toBe(r.sampler);
      }
    }
  });

  it('flags match docs/samplers.md §3.1', () => {
    const stochastic = CANONICAL_SAMPLER_IDS.filter((id) => samplers[id].stochastic).sort();
    expect(stochastic).toEqual(
      ['ddpm', 'dpm_2_ancestral', 'dpmpp_2m_sde', 'dpmpp_2s_ancestral', 'dpmpp_3m_sde', 'dpmpp_sde', 'euler_ancestral', 'euler_ancestral_cfg_pp', 'lcm'].sort(),
    );
    const brownian = CANONICAL_SAMPLER_IDS.filter((id) => samplers[id].defaultNoise === 'brownian').sort();
    expect(brownian).toEqual(['dpmpp_2m_sde', 'dpmpp_3m_sde', 'dpmpp_sde']);
    const uncond = CANONICAL_SAMPLER_IDS.filter((id) => samplers[id].usesUncond).sort();
    expect(uncond).toEqual(['euler_ancestral_cfg_pp', 'euler_cfg_pp']);
    expect(samplers.euler_ancestral.defaultOptions.eta).toBe(1);
    expect(samplers.dpm_fast.defaultOptions.eta).toBe(0);
    expect(samplers.uni_pc_bh2.defaultOptions.variant).toEqual({ variant: 'bh2' });
  });

  it('isStochastic follows eta and s_noise', () => {
    expect(isStochastic('euler_ancestral', {})).toBe(true);
    expect(isStochastic('euler_ancestral', { eta: 0 })).toBe(false);
    expect(isStochastic('ddpm', { eta: 0 })).toBe(true);
    expect(isStochastic('dpm_fast', { eta: 1 })).toBe(true);
    expect(isStochastic('dpm_fast', {})).toBe(false);
    expect(isStochastic('euler', { eta: 1 })).toBe(false);
    expect(isStochastic('euler_cfg_pp', { eta: 1 })).toBe(false);
    expect(isStochastic('dpmpp_sde', { s_noise: 0 })).toBe(false);
  });
});

describe('behaviour shared by every sampler', () => {
  for (const id of CANONICAL_SAMPLER_IDS) {
    it(`${id}: pure, keeps the tensor kind, reports steps, honours abort, validates sigmas`, async () => {
      const entry = samplers[id];
      // Pure: the input is untouched, the output is a new tensor of the same kind.
      const x = Float64Array.from(X64);
      const steps: StepInfo[] = [];
      const out = await entry.sample(DENOISE(), x, SIGMAS, recordingNoise(x.length), {
        ...entry.defaultOptions,
        onStep: async (info) => {
          await Promise.resolve();
          steps.push(info);
        },
      });
      expect(maxAbsDiff(x, X64)).toBe(0);
      expect(out).toBeInstanceOf(Float64Array);
      expect(out).not.toBe(x);
      expect(out.every(Number.isFinite)).toBe(true);
      expect(steps.length).toBeGreaterThan(0);
      steps.forEach((s, k) => expect(s.i).toBe(k));
      expect(steps[steps.length - 1].x).toEqual(out);
      if (id !== 'dpm_fast' && id !== 'dpm_adaptive') {
        expect(steps).toHaveLength(SIGMAS.length - 1);
        steps.forEach((s, k) => {
          expect(s.total).toBe(SIGMAS.length - 1);
          expect(s.sigma).toBe(SIGMAS[k]);
          expect(s.sigmaNext).toBe(SIGMAS[k + 1]);
        });
      }

      // Float32 in → Float32 out, close to the float64 result.
      const out32 = await entry.sample(DENOISE(), Float32Array.from(X64), SIGMAS, recordingNoise(x.length), entry.defaultOptions);
      const out64 = await entry.sample(DENOISE(), X64, SIGMAS, recordingNoise(x.length), entry.defaultOptions);
      expect(out32).toBeInstanceOf(Float32Array);
      expect(maxAbsDiff(out32, out64)).toBeLessThan(id === 'dpm_adaptive' ? 5e-2 : 2e-3);

      // Abort: a pre-aborted signal rejects with its reason before any evaluation; aborting during
      // onStep stops before the next step.
      const reason = new Error('stop');
      const pre = DENOISE();
      const controller = new AbortController();
      controller.abort(reason);
      await expect(entry.sample(pre, X64, SIGMAS, recordingNoise(x.length), { ...entry.defaultOptions, signal: controller.signal })).rejects.toBe(reason);
      expect(pre.calls).toHaveLength(0);
      const mid = new AbortController();
      let reported = 0;
      await expect(
        entry.sample(DENOISE(), X64, SIGMAS, recordingNoise(x.length), {
          ...entry.defaultOptions,
          signal: mid.signal,
          onStep: () => {
            reported++;
            mid.abort();
          },
        }),
      ).rejects.toThrow();
      expect(reported).toBe(1);

      // Sigma validation.
      await expect(entry.sample(DENOISE(), X64, [1, 2, 0], recordingNoise(x.length), entry.defaultOptions)).rejects.toThrow(RangeError);
      await expect(entry.sample(DENOISE(), X64, [3, 0, 0], recordingNoise(x.length), entry.defaultOptions)).rejects.toThrow(RangeError);
      await expect(entry.sample(DENOISE(), X64, [3, Number.NaN, 0], recordingNoise(x.length), entry.defaultOptions)).rejects.toThrow(RangeError);
    });
  }

  it('a single step [σ, 0] works for every sampler and never evaluates at 0', async () => {
    for (const id of CANONICAL_SAMPLER_IDS) {
      const d = gaussianDenoiser(0.1, 0.7);
      const out = await samplers[id].sample(d, X64, [SIGMAS[0], 0], recordingNoise(X64.length), samplers[id].defaultOptions);
      expect(out.every(Number.isFinite)).toBe(true);
      expect(d.calls.every((s) => s > 0)).toBe(true);
    }
  });

  it('an aborted signal without a reason still rejects', async () => {
    const signal = { aborted: true, reason: undefined } as unknown as AbortSignal;
    await expect(samplers.euler.sample(DENOISE(), X64, SIGMAS, recordingNoise(X64.length), { signal })).rejects.toThrow('aborted');
  });

  it('a denoiser returning the wrong length is reported', async () => {
    const bad = async () => ({ denoised: new Float64Array(3) });
    await expect(samplers.euler.sample(bad, X64, SIGMAS, recordingNoise(X64.length), {})).rejects.toThrow(/3 values/);
  });
});
