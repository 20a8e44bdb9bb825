import { describe, expect, it } from 'vitest';
import {
  CANONICAL_SAMPLER_IDS,
  CANONICAL_SCHEDULE_IDS,
  DEFAULT_SAMPLER_NAME,
  DEFAULT_SCHEDULER_NAME,
  NAME_STYLES,
  SAMPLER_NAMES,
  SCHEDULER_NAMES,
  SamplerNameError,
  resolveSampler,
} from '@image-api/shared/sampler-names';

/** The public lists of the README's "Public API", copied here so a renamed or dropped entry fails loudly. */
const API_STYLES_LISTS = {
  sdcpp: ['euler_a', 'euler', 'heun', 'dpm2', 'dpm++2s_a', 'dpm++2m', 'dpm++2mv2', 'ipndm', 'ipndm_v', 'lcm'],
  comfyui: [
    'euler', 'euler_cfg_pp', 'euler_ancestral', 'euler_ancestral_cfg_pp', 'heun', 'heunpp2', 'dpm_2',
    'dpm_2_ancestral', 'lms', 'dpm_fast', 'dpm_adaptive', 'dpmpp_2s_ancestral', 'dpmpp_sde', 'dpmpp_sde_gpu',
    'dpmpp_2m', 'dpmpp_2m_sde', 'dpmpp_2m_sde_gpu', 'dpmpp_3m_sde', 'dpmpp_3m_sde_gpu', 'ddpm', 'lcm', 'ipndm',
    'ipndm_v', 'deis', 'ddim', 'uni_pc', 'uni_pc_bh2',
  ],
  a1111: [
    'Euler a', 'Euler', 'LMS', 'Heun', 'DPM2', 'DPM2 a', 'DPM++ 2S a', 'DPM++ 2M', 'DPM++ SDE', 'DPM fast',
    'DPM adaptive', 'LMS Karras', 'DPM2 Karras', 'DPM2 a Karras', 'DPM++ 2S a Karras', 'DPM++ 2M Karras',
    'DPM++ SDE Karras', 'DDIM', 'PLMS', 'UniPC',
  ],
} as const;

const API_STYLES_SCHEDULERS = {
  sdcpp: ['discrete', 'karras', 'exponential', 'ays', 'gits'],
  comfyui: ['normal', 'karras', 'exponential', 'sgm_uniform', 'simple', 'ddim_uniform', 'beta'],
} as const;

describe('sampler name table', () => {
  it('accepts every public name of the README "Public API", for every style', () => {
    for (const style of NAME_STYLES) {
      for (const name of API_STYLES_LISTS[style]) expect(SAMPLER_NAMES[style]).toContain(name);
    }
    expect(SCHEDULER_NAMES.sdcpp).toEqual([...API_STYLES_SCHEDULERS.sdcpp]);
    expect(SCHEDULER_NAMES.comfyui).toEqual([...API_STYLES_SCHEDULERS.comfyui]);
  });

  it('resolves every (sampler, scheduler) pair of every style to canonical ids', () => {
    for (const style of NAME_STYLES) {
      for (const name of SAMPLER_NAMES[style]) {
        for (const scheduler of [undefined, ...SCHEDULER_NAMES[style]]) {
          const r = resolveSampler(style, name, scheduler);
          expect(CANONICAL_SAMPLER_IDS).toContain(r.sampler);
          expect(CANONICAL_SCHEDULE_IDS).toContain(r.scheduler);
          expect(typeof r.discard_penultimate_sigma).toBe('boolean');
        }
      }
    }
  });

  it('defaults resolve', () => {
    for (const style of NAME_STYLES) {
      expect(() => resolveSampler(style, DEFAULT_SAMPLER_NAME[style], DEFAULT_SCHEDULER_NAME[style])).not.toThrow();
    }
    expect(resolveSampler('sdcpp', 'euler_a')).toEqual({
      sampler: 'euler_ancestral',
      scheduler: 'normal',
      options: { eta: 1 },
      discard_penultimate_sigma: false,
    });
  });

  it('maps the sd.cpp names of docs/samplers.md §4.1', () => {
    expect(resolveSampler('sdcpp', 'dpm2', 'karras')).toMatchObject({ sampler: 'dpm_2', scheduler: 'karras', discard_penultimate_sigma: false });
    expect(resolveSampler('sdcpp', 'dpm++2s_a').options).toEqual({ eta: 1 });
    expect(resolveSampler('sdcpp', 'dpm++2mv2').sampler).toBe('dpmpp_2m_v2');
    expect(resolveSampler('sdcpp', 'ipndm').options.variant).toEqual({ final: 'multistep' });
    expect(resolveSampler('sdcpp', 'ipndm_v').options.variant).toEqual({ flavor: 'sdcpp' });
    expect(resolveSampler('sdcpp', 'euler', 'discrete').scheduler).toBe('normal');
    expect(resolveSampler('sdcpp', 'euler', 'ays').scheduler).toBe('ays');
    expect(resolveSampler('sdcpp', 'euler', 'gits').scheduler).toBe('gits');
  });

  it('maps the ComfyUI names of docs/samplers.md §4.2, *_gpu names as aliases', () => {
    expect(resolveSampler('comfyui', 'dpmpp_sde_gpu')).toEqual(resolveSampler('comfyui', 'dpmpp_sde'));
    expect(resolveSampler('comfyui', 'dpmpp_2m_sde_gpu')).toEqual(resolveSampler('comfyui', 'dpmpp_2m_sde'));
    expect(resolveSampler('comfyui', 'dpmpp_3m_sde_gpu')).toEqual(resolveSampler('comfyui', 'dpmpp_3m_sde'));
    expect(resolveSampler('comfyui', 'dpmpp_2m_sde').options).toEqual({ eta: 1, variant: { solver_type: 'midpoint' } });
    expect(resolveSampler('comfyui', 'dpmpp_2m_sde_heun').options.variant).toEqual({ solver_type: 'heun' });
    expect(resolveSampler('comfyui', 'lms').options.variant).toEqual({ final: 'denoise' });
    expect(resolveSampler('comfyui', 'ipndm').options.variant).toEqual({ final: 'denoise' });
    expect(resolveSampler('comfyui', 'ipndm_v').options.variant).toEqual({ flavor: 'comfy' });
    expect(resolveSampler('comfyui', 'dpm_fast').options.eta).toBe(0);
    for (const name of ['dpm_2', 'dpm_2_ancestral', 'uni_pc', 'uni_pc_bh2']) {
      expect(resolveSampler('comfyui', name).discard_penultimate_sigma).toBe(true);
    }
    for (const name of ['euler', 'heun', 'dpmpp_2m', 'lms', 'deis']) {
      expect(resolveSampler('comfyui', name).discard_penultimate_sigma).toBe(false);
    }
    expect(resolveSampler('comfyui', 'uni_pc_bh2').options.variant).toEqual({ variant: 'bh2' });
    expect(resolveSampler('comfyui', 'ddim', 'ddim_uniform')).toMatchObject({ sampler: 'ddim', scheduler: 'ddim_uniform' });
    expect(resolveSampler('comfyui', 'euler', 'beta').scheduler).toBe('beta');
  });

  it('maps the A1111 combined names of docs/samplers.md §4.3', () => {
    expect(resolveSampler('a1111', 'DPM++ 2M Karras')).toEqual({
      sampler: 'dpmpp_2m', scheduler: 'karras', options: {}, discard_penultimate_sigma: false,
    });
    expect(resolveSampler('a1111', 'DPM2 a Karras')).toEqual({
      sampler: 'dpm_2_ancestral', scheduler: 'karras', options: { eta: 1 }, discard_penultimate_sigma: true,
    });
    expect(resolveSampler('a1111', 'LMS')).toMatchObject({ sampler: 'lms', scheduler: 'normal', options: { variant: { final: 'lms' } } });
    expect(resolveSampler('a1111', 'DPM fast').options.eta).toBe(1);
    expect(resolveSampler('a1111', 'DPM adaptive').options.eta).toBe(1);
    expect(resolveSampler('a1111', 'DDIM')).toMatchObject({ sampler: 'euler', scheduler: 'ddim_uniform' });
    expect(resolveSampler('a1111', 'PLMS')).toMatchObject({ sampler: 'plms', scheduler: 'ddim_uniform' });
    expect(resolveSampler('a1111', 'UniPC')).toMatchObject({ sampler: 'uni_pc', scheduler: 'normal_no_final_zero', discard_penultimate_sigma: false });
    // An explicit schedule type overrides the one the combined name implies; Automatic keeps it.
    expect(resolveSampler('a1111', 'DPM++ 2M', 'Karras').scheduler).toBe('karras');
    expect(resolveSampler('a1111', 'DPM++ 2M Karras', 'Automatic').scheduler).toBe('karras');
  });

  it('accepts case-insensitive spellings but prefers the exact one', () => {
    expect(resolveSampler('a1111', 'dpm++ 2m karras')).toEqual(resolveSampler('a1111', 'DPM++ 2M Karras'));
    expect(resolveSampler('a1111', 'euler a').sampler).toBe('euler_ancestral');
    expect(resolveSampler('comfyui', 'Euler', 'Karras')).toMatchObject({ sampler: 'euler', scheduler: 'karras' });
  });

  it('unknown names throw SamplerNameError with the style field and the accepted list', () => {
    const cases: [Parameters<typeof resolveSampler>, string, readonly string[]][] = [
      [['sdcpp', 'euler_ancestral'], 'sample_method', SAMPLER_NAMES.sdcpp],
      [['sdcpp', 'euler', 'normal'], 'schedule_method', SCHEDULER_NAMES.sdcpp],
      [['comfyui', 'euler_a'], 'sampler_name', SAMPLER_NAMES.comfyui],
      [['comfyui', 'euler', 'discrete'], 'scheduler', SCHEDULER_NAMES.comfyui],
      [['a1111', 'DPM++ 2M Exponential'], 'sampler_name', SAMPLER_NAMES.a1111],
      [['a1111', 'Euler', 'Fastest'], 'scheduler', SCHEDULER_NAMES.a1111],
    ];
    for (const [args, param, accepted] of cases) {
      let error: unknown;
      try {
        resolveSampler(...args);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(SamplerNameError);
      const e = error as SamplerNameError;
      expect(e.param).toBe(param);
      expect(e.accepted).toEqual([...accepted]);
      for (const name of accepted) expect(e.message).toContain(name);
    }
  });

  it('results are copies: mutating one does not change the table', () => {
    const r = resolveSampler('comfyui', 'lms');
    r.options.variant!.final = 'lms';
    expect(resolveSampler('comfyui', 'lms').options.variant).toEqual({ final: 'denoise' });
  });
});
