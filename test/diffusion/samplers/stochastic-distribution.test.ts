/**
 * Stochastic (ancestral / SDE) samplers over many seeds: one long float64 tensor holds M independent
 * samples (the samplers are element-wise), started from the exact marginal at σ_max (x0 from the data
 * plus σ_max·n), so an exact sampler returns exact data samples. Checked: sample mean, variance and, for a
 * two-component mixture, the mass of the lower mode — against the closed-form data distribution.
 *
 * Tolerances: M = 8000 gives standard errors of ≈ 0.009 (Gaussian mean), ≈ 0.02 (mixture mean), ≈ 1.6 %
 * (variance) and ≈ 0.005 (mode mass); we allow ≈ 4 SE plus the schedule's own discretisation bias. The
 * first-order ancestral samplers (euler_ancestral, ddpm, euler_ancestral_cfg_pp) lose ≈ 7/N of the
 * variance, so they run 150 steps; the second-order ones 40.
 * The deterministic samplers are included on the mixture as well (the probability-flow ODE preserves the
 * distribution too). LCM is special: with an exact posterior-mean denoiser x ← D + σ′n is not a sampler
 * of the data, so it is checked against its own closed-form variance recursion instead.
 */
import { describe, expect, it } from 'vitest';
import {
  createBrownianTreeNoise,
  createIidNoise,
  samplers,
  type CanonicalSamplerId,
} from '../../../gpu-service/src/diffusion/samplers';
import type { NoiseSource, SamplerOptions } from '../../../gpu-service/src/diffusion/samplers/types';
import {
  type MixtureComponent,
  fractionBelow,
  gaussianDenoiser,
  karras,
  mixtureDenoiser,
  mixtureLatents,
  mixtureStats,
  moments,
  seededNormalGenerator,
  withZero,
} from './helpers';

const M = 8000;
const GAUSSIAN: MixtureComponent[] = [{ weight: 1, mu: 0.3, s: 0.8 }];
const MIXTURE: MixtureComponent[] = [
  { weight: 0.3, mu: -2, s: 0.5 },
  { weight: 0.7, mu: 1.5, s: 0.8 },
];
const CUT = -0.25; // between the two modes

interface Case {
  id: CanonicalSamplerId;
  steps: number;
  options?: SamplerOptions;
  noise?: 'iid' | 'brownian';
  label?: string;
}

const STOCHASTIC: Case[] = [
  { id: 'euler_ancestral', steps: 150 },
  { id: 'ddpm', steps: 150 },
  { id: 'euler_ancestral_cfg_pp', steps: 150 },
  { id: 'dpm_2_ancestral', steps: 40 },
  { id: 'dpmpp_2s_ancestral', steps: 40 },
  { id: 'dpmpp_sde', steps: 40 },
  { id: 'dpmpp_2m_sde', steps: 40 },
  { id: 'dpmpp_2m_sde', steps: 40, options: { eta: 1, variant: { solver_type: 'heun' } }, label: 'dpmpp_2m_sde (heun)' },
  { id: 'dpmpp_3m_sde', steps: 40 },
  { id: 'dpm_fast', steps: 30, options: { eta: 1 }, label: 'dpm_fast (η = 1, A1111)' },
];

function noiseFor(kind: 'iid' | 'brownian', sigmas: number[]): NoiseSource {
  if (kind === 'iid') return createIidNoise([seededNormalGenerator(4242)], M);
  const positive = sigmas.filter((s) => s > 0);
  return createBrownianTreeNoise({ seeds: [4242], perImageNumel: M, sigmaMin: Math.min(...positive), sigmaMax: Math.max(...positive), dtype: 'float64' });
}

async function sampleDistribution(c: Case, components: MixtureComponent[]) {
  const sigmas = withZero(karras(c.steps));
  const xT = mixtureLatents(components, M, sigmas[0], 77);
  const entry = samplers[c.id];
  const noise = noiseFor(c.noise ?? entry.defaultNoise, sigmas);
  return entry.sample(mixtureDenoiser(components), xT, sigmas, noise, c.options ?? entry.defaultOptions);
}

function expectMatches(out: ArrayLike<number>, components: MixtureComponent[]) {
  const exact = mixtureStats(components, CUT);
  const m = moments(out);
  const se = Math.sqrt(exact.variance / M);
  expect(Math.abs(m.mean - exact.mean)).toBeLessThan(4 * se + 0.01);
  expect(Math.abs(m.variance / exact.variance - 1)).toBeLessThan(0.08);
  if (components.length > 1) expect(Math.abs(fractionBelow(out, CUT) - exact.below)).toBeLessThan(0.025);
}

describe('ancestral / SDE samplers reproduce the data distribution', () => {
  for (const c of STOCHASTIC) {
    it(`${c.label ?? c.id}: Gaussian and two-component mixture (${c.steps} steps)`, async () => {
      expectMatches(await sampleDistribution(c, GAUSSIAN), GAUSSIAN);
      expectMatches(await sampleDistribution(c, MIXTURE), MIXTURE);
    });
  }
});

describe('dpmpp_sde needs correlated (Brownian) noise', () => {
  it('its two draws per step share an increment: with a Brownian tree the variance is far closer than with i.i.d. draws', async () => {
    // With i.i.d. noise the stage-1 and stage-2 draws are independent and the sampler under-disperses
    // (≈ 0.6 of the data variance at 10 steps); the registry therefore defaults it to the Brownian tree.
    expect(samplers.dpmpp_sde.defaultNoise).toBe('brownian');
    const [{ s }] = GAUSSIAN;
    const c: Case = { id: 'dpmpp_sde', steps: 10 };
    const brownian = moments(await sampleDistribution(c, GAUSSIAN)).variance / (s * s);
    const iid = moments(await sampleDistribution({ ...c, noise: 'iid' }, GAUSSIAN)).variance / (s * s);
    expect(Math.abs(brownian - 1)).toBeLessThan(0.15);
    expect(Math.abs(iid - 1)).toBeGreaterThan(2 * Math.abs(brownian - 1));
  });
});

describe('deterministic samplers reproduce the mixture too (probability-flow ODE)', () => {
  const ids: CanonicalSamplerId[] = ['heun', 'dpm_2', 'lms', 'ipndm', 'ipndm_v', 'deis', 'plms', 'dpmpp_2m', 'uni_pc', 'uni_pc_bh2'];
  it(`${ids.join(', ')} (30 steps); euler (100 steps)`, async () => {
    for (const id of ids) expectMatches(await sampleDistribution({ id, steps: 30 }, MIXTURE), MIXTURE);
    expectMatches(await sampleDistribution({ id: 'euler', steps: 100 }, MIXTURE), MIXTURE);
  });
});

describe('lcm', () => {
  it('matches its closed-form variance recursion v′ = c²v + σ′² on Gaussian data (below s²: D is a posterior mean)', async () => {
    const [{ mu, s }] = GAUSSIAN;
    const sigmas = withZero(karras(8));
    const xT = mixtureLatents(GAUSSIAN, M, sigmas[0], 78);
    const out = await samplers.lcm.sample(gaussianDenoiser(mu, s), xT, sigmas, createIidNoise([seededNormalGenerator(7)], M), {});
    let v = s * s + sigmas[0] ** 2;
    for (let i = 0; i < sigmas.length - 1; i++) {
      const c = (s * s) / (s * s + sigmas[i] ** 2);
      v = c * c * v + sigmas[i + 1] ** 2; // σ_N = 0 adds nothing on the last step
    }
    const m = moments(out);
    expect(Math.abs(m.mean - mu)).toBeLessThan(4 * Math.sqrt(v / M));
    expect(Math.abs(m.variance / v - 1)).toBeLessThan(0.06);
    expect(v).toBeLessThan(0.8 * s * s);
  });
});
