/**
 * The noise-call and model-call contract of docs/samplers.md §0 and §3.1: which noise() calls a sampler
 * makes, in which order, with which (σ, σ') — part of the contract because tests and reproductions replay
 * recorded noise — and how many denoiser evaluations (NFE) it costs.
 */
import { describe, expect, it } from 'vitest';
import { samplers, type CanonicalSamplerId } from '../../../gpu-service/src/diffusion/samplers';
import { CANONICAL_SAMPLER_IDS } from '@image-api/shared/sampler-names';
import { NO_NOISE, gaussianDenoiser, karras, normals64, recordingNoise, withZero } from './helpers';

const N = 6;
const SIGMAS = withZero(karras(N));
const X = Float64Array.from(normals64(3, 5), (v) => v * SIGMAS[0]);

/** NFE for N steps whose last sigma is 0 (docs/samplers.md §3.1). */
const EXPECTED_NFE: Record<Exclude<CanonicalSamplerId, 'dpm_adaptive'>, number> = {
  euler: N,
  ddim: N,
  lms: N,
  ipndm: N,
  ipndm_v: N,
  deis: N,
  dpmpp_2m: N,
  dpmpp_2m_v2: N,
  uni_pc: N,
  uni_pc_bh2: N,
  euler_cfg_pp: N,
  euler_ancestral: N,
  ddpm: N,
  lcm: N,
  dpmpp_2m_sde: N,
  dpmpp_3m_sde: N,
  euler_ancestral_cfg_pp: N,
  heun: 2 * N - 1,
  dpm_2: 2 * N - 1,
  dpm_2_ancestral: 2 * N - 1,
  dpmpp_2s_ancestral: 2 * N - 1,
  dpmpp_sde: 2 * N - 1,
  heunpp2: 3 * N - 3,
  plms: N + 1,
  dpm_fast: N,
};

/** Samplers that call noise(σ_i, σ_{i+1}) once per step with σ_{i+1} > 0 at their default η. */
const ONE_CALL_PER_STEP: CanonicalSamplerId[] = [
  'euler_ancestral',
  'ddpm',
  'lcm',
  'dpm_2_ancestral',
  'dpmpp_2s_ancestral',
  'dpmpp_2m_sde',
  'dpmpp_3m_sde',
  'euler_ancestral_cfg_pp',
];

/** Samplers whose noise term vanishes at η = 0 (ddpm and lcm do not read eta). */
const ETA_CONTROLLED: CanonicalSamplerId[] = [
  'euler_ancestral',
  'dpm_2_ancestral',
  'dpmpp_2s_ancestral',
  'dpmpp_sde',
  'dpmpp_2m_sde',
  'dpmpp_3m_sde',
  'euler_ancestral_cfg_pp',
];

const stepPairs = (sigmas: number[], count: number): [number, number][] =>
  Array.from({ length: count }, (_, i) => [sigmas[i], sigmas[i + 1]] as [number, number]);

describe('model evaluations (NFE) per sampler', () => {
  for (const [id, nfe] of Object.entries(EXPECTED_NFE) as [CanonicalSamplerId, number][]) {
    it(`${id}: ${nfe} evaluations for ${N} steps, never at σ = 0, first at σ_0`, async () => {
      const d = gaussianDenoiser(0, 1);
      const entry = samplers[id];
      await entry.sample(d, X, SIGMAS, recordingNoise(X.length), entry.defaultOptions);
      expect(d.calls.length).toBe(nfe);
      expect(d.calls[0]).toBe(SIGMAS[0]);
      for (const s of d.calls) expect(s).toBeGreaterThan(0);
    });
  }

  it('heunpp2 costs 3N − 3 for other N too; plms N + 1; uni_pc N even for N = 1 and 2', async () => {
    for (const n of [2, 3, 10]) {
      const d = gaussianDenoiser(0, 1);
      await samplers.heunpp2.sample(d, X, withZero(karras(n)), NO_NOISE, {});
      expect(d.calls.length).toBe(3 * n - 3);
      const p = gaussianDenoiser(0, 1);
      await samplers.plms.sample(p, X, withZero(karras(n)), NO_NOISE, {});
      expect(p.calls.length).toBe(n + 1);
    }
    for (const n of [1, 2, 3]) {
      const d = gaussianDenoiser(0, 1);
      await samplers.uni_pc.sample(d, X, withZero(karras(n)), NO_NOISE, {});
      expect(d.calls.length).toBe(n);
    }
  });
});

describe('noise() calls: count, order and (σ, σ′) arguments', () => {
  it('every sampler the registry marks deterministic never calls noise()', async () => {
    for (const id of CANONICAL_SAMPLER_IDS) {
      const entry = samplers[id];
      if (entry.stochastic) continue;
      // NO_NOISE throws on any call.
      await entry.sample(gaussianDenoiser(0, 1), X, SIGMAS, NO_NOISE, entry.defaultOptions);
    }
  });

  for (const id of ONE_CALL_PER_STEP) {
    it(`${id}: N − 1 calls (σ_i, σ_{i+1}), none on the step to 0`, async () => {
      const noise = recordingNoise(X.length);
      await samplers[id].sample(gaussianDenoiser(0, 1), X, SIGMAS, noise, samplers[id].defaultOptions);
      expect(noise.calls).toEqual(stepPairs(SIGMAS, N - 1));
    });
  }

  it('dpmpp_sde: 2(N − 1) calls, (σ_i, σ_s) then (σ_i, σ_{i+1}) with σ_s = sqrt(σ_i σ_{i+1})', async () => {
    const noise = recordingNoise(X.length);
    await samplers.dpmpp_sde.sample(gaussianDenoiser(0, 1), X, SIGMAS, noise, samplers.dpmpp_sde.defaultOptions);
    const expected: [number, number][] = [];
    for (let i = 0; i < N - 1; i++) {
      expected.push([SIGMAS[i], Math.sqrt(SIGMAS[i] * SIGMAS[i + 1])]);
      expected.push([SIGMAS[i], SIGMAS[i + 1]]);
    }
    expect(noise.calls).toHaveLength(expected.length);
    noise.calls.forEach(([a, b], k) => {
      expect(a).toBe(expected[k][0]);
      expect(b).toBeCloseTo(expected[k][1], 14);
    });
  });

  it('without a trailing 0 an ancestral sampler draws on every step', async () => {
    const sigmas = karras(N + 1);
    const noise = recordingNoise(X.length);
    await samplers.euler_ancestral.sample(gaussianDenoiser(0, 1), X, sigmas, noise, {});
    expect(noise.calls).toEqual(stepPairs(sigmas, N));
  });

  it('η = 0 switches the noise off for every sampler that reads eta; ddpm and lcm ignore eta', async () => {
    for (const id of ETA_CONTROLLED) {
      await samplers[id].sample(gaussianDenoiser(0, 1), X, SIGMAS, NO_NOISE, { ...samplers[id].defaultOptions, eta: 0 });
    }
    for (const id of ['ddpm', 'lcm'] as const) {
      const noise = recordingNoise(X.length);
      await samplers[id].sample(gaussianDenoiser(0, 1), X, SIGMAS, noise, { eta: 0 });
      expect(noise.calls).toHaveLength(N - 1);
    }
  });

  it('s_noise = 0 switches the noise off for every stochastic sampler', async () => {
    for (const id of [...ETA_CONTROLLED, 'ddpm', 'lcm'] as CanonicalSamplerId[]) {
      await samplers[id].sample(gaussianDenoiser(0, 1), X, SIGMAS, NO_NOISE, { ...samplers[id].defaultOptions, s_noise: 0 });
    }
  });

  it('euler_cfg_pp ignores eta (it is the η = 0 CFG++ sampler)', async () => {
    await samplers.euler_cfg_pp.sample(gaussianDenoiser(0, 1), X, SIGMAS, NO_NOISE, { eta: 1 });
  });

  it('dpm_fast with η = 1 (A1111): one call per interval (σ(t), σ(t′)) on t-uniform intervals, none on the last', async () => {
    const n = 9; // m = 4 intervals, orders [3, 3, 2, 1]
    const sigmas = withZero(karras(n));
    const noise = recordingNoise(X.length);
    const d = gaussianDenoiser(0, 1);
    await samplers.dpm_fast.sample(d, X, sigmas, noise, { eta: 1 });
    expect(d.calls.length).toBe(n);
    const tStart = -Math.log(sigmas[0]);
    const tEnd = -Math.log(sigmas[n - 1]);
    const ts = Array.from({ length: 5 }, (_, k) => tStart + (k / 4) * (tEnd - tStart));
    expect(noise.calls).toHaveLength(3);
    noise.calls.forEach(([a, b], k) => {
      expect(a).toBeCloseTo(Math.exp(-ts[k]), 12);
      expect(b).toBeCloseTo(Math.exp(-ts[k + 1]), 12);
    });
    expect(noise.calls[0][0]).toBe(sigmas[0]);
  });

  it('dpm_adaptive with η = 1: calls only on accepted steps, chained from σ_max downwards', async () => {
    const sigmas = withZero(karras(10));
    const noise = recordingNoise(X.length);
    await samplers.dpm_adaptive.sample(gaussianDenoiser(0, 1), X, sigmas, noise, { eta: 1 });
    expect(noise.calls.length).toBeGreaterThan(2);
    expect(noise.calls[0][0]).toBe(sigmas[0]);
    for (let k = 0; k < noise.calls.length; k++) {
      const [a, b] = noise.calls[k];
      expect(b).toBeLessThan(a);
      expect(b).toBeGreaterThan(sigmas[9]);
      if (k > 0) expect(a).toBe(noise.calls[k - 1][1]);
    }
  });
});
