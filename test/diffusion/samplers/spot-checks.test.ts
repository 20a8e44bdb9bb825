/**
 * Exact identities and spot values from docs/samplers.md: iPNDM-v weights, ddpm ≡ euler_ancestral(η = 1),
 * CFG++ with U = D ≡ euler / euler_ancestral, UniPC order lists, variants and their differences, LMS / DEIS
 * coefficient sums, dpm_fast order lists, the ancestral split, churn.
 */
import { describe, expect, it } from 'vitest';
import { samplers } from '../../../gpu-service/src/diffusion/samplers';
import { ancestralStep } from '../../../gpu-service/src/diffusion/samplers/ancestral-step';
import { deisCoefficients, deisTime } from '../../../gpu-service/src/diffusion/samplers/deis';
import { dpmFastOrders } from '../../../gpu-service/src/diffusion/samplers/dpm-solver';
import { ADAMS_BASHFORTH_WEIGHTS, ipndmVWeights } from '../../../gpu-service/src/diffusion/samplers/ipndm';
import { lmsCoefficient } from '../../../gpu-service/src/diffusion/samplers/lms';
import { uniPcOrders } from '../../../gpu-service/src/diffusion/samplers/uni-pc';
import type { Denoiser, StepInfo } from '../../../gpu-service/src/diffusion/samplers/types';
import type { Tensor } from '../../../gpu-service/src/diffusion/tensor';
import {
  NO_NOISE,
  gaussianDenoiser,
  karras,
  maxAbsDiff,
  mixtureDenoiser,
  normals64,
  recordingNoise,
  replayNoise,
  withZero,
} from './helpers';

const SIGMAS = withZero(karras(12));
const X = Float64Array.from(normals64(5, 64), (v) => v * SIGMAS[0]);
const MIXTURE = mixtureDenoiser([
  { weight: 0.4, mu: -1.5, s: 0.4 },
  { weight: 0.6, mu: 1, s: 0.7 },
]);

/** A list of noise tensors long enough for any sampler here. */
const NOISE_TENSORS: Tensor[] = Array.from({ length: 40 }, (_, k) => normals64(100 + k, X.length));

/** Run a sampler and capture x before its final step. */
async function withHistory(run: (onStep: (info: StepInfo) => void) => Promise<Tensor>) {
  const xs: Tensor[] = [];
  const out = await run((info) => {
    xs.push(info.x);
  });
  return { out, xs };
}

describe('ipndm_v weights (docs/samplers.md §2.3)', () => {
  it('equal steps: orders 2 and 3 are Adams–Bashforth, order 4 is [57, −65, 43, −11]/24', () => {
    const h = -0.37;
    expect(ipndmVWeights(2, h, h)).toEqual(ADAMS_BASHFORTH_WEIGHTS[1].map((w) => expect.closeTo(w, 14)));
    ipndmVWeights(3, h, h, h).forEach((w, j) => expect(w).toBeCloseTo(ADAMS_BASHFORTH_WEIGHTS[2][j], 14));
    ipndmVWeights(4, h, h, h, h).forEach((w, j) => expect(w).toBeCloseTo([57, -65, 43, -11][j] / 24, 14));
  });

  it('orders 2 and 3 always sum to 1; order 4 sums to 1 + T2·G·(h2/h3 − h1/h2), exactly 1 for geometric steps', () => {
    const cases = [
      [-0.9, -1.7, -2.1, -4.3],
      [-0.05, -0.2, -0.21, -0.6],
      [-3, -2, -1.5, -1],
    ];
    for (const [h0, h1, h2, h3] of cases) {
      const sum = (w: number[]) => w.reduce((a, b) => a + b, 0);
      expect(sum(ipndmVWeights(2, h0, h1))).toBeCloseTo(1, 14);
      expect(sum(ipndmVWeights(3, h0, h1, h2))).toBeCloseTo(1, 14);
      const G = (h1 * (h1 + h2)) / (h2 * (h2 + h3));
      const T2 =
        ((1 - h0 / (3 * (h0 + h1))) / 2 + ((1 - h0 / (2 * (h0 + h1))) * h0) / (6 * (h0 + h1 + h2))) *
        ((h0 * (h0 + h1) * (h0 + h1 + h2)) / (h1 * (h1 + h2) * (h1 + h2 + h3)));
      expect(sum(ipndmVWeights(4, h0, h1, h2, h3))).toBeCloseTo(1 + T2 * G * (h2 / h3 - h1 / h2), 12);
    }
    const q = 0.8;
    expect(ipndmVWeights(4, -1 * q ** 3, -1 * q ** 2, -1 * q, -1).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 14);
  });

  it('T1 subtracts the product of both ratios from 1 before halving (the bracket trap of §2.3)', () => {
    const [h0, h1, h2] = [-0.5, -1, -2];
    // T1 = (1 − [h0/(3(h0+h1))]·[h0(h0+h1)/(h1(h1+h2))])/2 = (1 − (1/9)·(0.25))/2 = 35/72
    const t1 = 35 / 72;
    const q = h0 / h1;
    expect(ipndmVWeights(3, h0, h1, h2)[2]).toBeCloseTo((t1 * h1) / h2, 14);
    expect(ipndmVWeights(3, h0, h1, h2)[0]).toBeCloseTo((2 + q) / 2 + t1, 14);
  });

  it('on a uniform σ grid, ipndm_v{sdcpp} equals ipndm{multistep} and ipndm_v{comfy} differs only from order 4 on', async () => {
    const sigmas = Array.from({ length: 9 }, (_, k) => 8 * (1 - k / 8)); // 8, 7, …, 1, 0
    const a = await samplers.ipndm_v.sample(gaussianDenoiser(0.2, 0.9), X, sigmas, NO_NOISE, { variant: { flavor: 'sdcpp' } });
    const b = await samplers.ipndm.sample(gaussianDenoiser(0.2, 0.9), X, sigmas, NO_NOISE, { variant: { final: 'multistep' } });
    expect(maxAbsDiff(a, b)).toBeLessThan(1e-12);
    const short = sigmas.slice(0, 4); // 3 steps: orders 1, 2, 3 only
    const c = await samplers.ipndm_v.sample(gaussianDenoiser(0.2, 0.9), X, short, NO_NOISE, { variant: { flavor: 'comfy' } });
    const d = await samplers.ipndm.sample(gaussianDenoiser(0.2, 0.9), X, short, NO_NOISE, {});
    expect(maxAbsDiff(c, d)).toBeLessThan(1e-12);
    const e = await samplers.ipndm_v.sample(gaussianDenoiser(0.2, 0.9), X, sigmas, NO_NOISE, { variant: { flavor: 'comfy' } });
    const f = await samplers.ipndm.sample(gaussianDenoiser(0.2, 0.9), X, sigmas, NO_NOISE, { variant: { final: 'denoise' } });
    expect(maxAbsDiff(e, f)).toBeGreaterThan(1e-6);
  });
});

describe('identities between samplers', () => {
  it('ddpm equals euler_ancestral with η = 1 (same replayed noise) to rounding', async () => {
    const a = await samplers.ddpm.sample(MIXTURE, X, SIGMAS, replayNoise(NOISE_TENSORS), {});
    const b = await samplers.euler_ancestral.sample(MIXTURE, X, SIGMAS, replayNoise(NOISE_TENSORS), { eta: 1 });
    expect(maxAbsDiff(a, b)).toBeLessThan(1e-12);
    expect(maxAbsDiff(a, X)).toBeGreaterThan(1);
  });

  it('CFG++ with U = D equals euler / euler_ancestral exactly', async () => {
    const withUncond: Denoiser = async (x, sigma) => {
      const { denoised } = await MIXTURE(x, sigma);
      return { denoised, uncond: denoised };
    };
    const a = await samplers.euler_cfg_pp.sample(withUncond, X, SIGMAS, NO_NOISE, {});
    const b = await samplers.euler.sample(MIXTURE, X, SIGMAS, NO_NOISE, {});
    expect(maxAbsDiff(a, b)).toBeLessThan(1e-12);
    const c = await samplers.euler_ancestral_cfg_pp.sample(withUncond, X, SIGMAS, replayNoise(NOISE_TENSORS), {});
    const d = await samplers.euler_ancestral.sample(MIXTURE, X, SIGMAS, replayNoise(NOISE_TENSORS), {});
    expect(maxAbsDiff(c, d)).toBeLessThan(1e-12);
  });

  it('CFG++ with U ≠ D follows x ← D + σ_d(x − U)/σ (one step, by hand)', async () => {
    const sigmas = [3, 1.2];
    const guided: Denoiser = async (x) => ({ denoised: Float64Array.from(x, (v) => 0.5 * v + 1), uncond: Float64Array.from(x, (v) => 0.25 * v) });
    const out = await samplers.euler_cfg_pp.sample(guided, X, sigmas, NO_NOISE, {});
    const expected = Float64Array.from(X, (v) => 0.5 * v + 1 + (1.2 * (v - 0.25 * v)) / 3);
    expect(maxAbsDiff(out, expected)).toBeLessThan(1e-12);
    const noise = normals64(9, X.length);
    const outA = await samplers.euler_ancestral_cfg_pp.sample(guided, X, sigmas, replayNoise([noise]), {});
    const { sigmaDown, sigmaUp } = ancestralStep(3, 1.2, 1);
    const expectedA = Float64Array.from(X, (v, k) => 0.5 * v + 1 + (sigmaDown * (v - 0.25 * v)) / 3 + sigmaUp * noise[k]);
    expect(maxAbsDiff(outA, expectedA)).toBeLessThan(1e-12);
  });

  it('dpmpp_2m_sde with η = 0 and the midpoint solver is dpmpp_2m; the heun solver differs', async () => {
    const a = await samplers.dpmpp_2m_sde.sample(MIXTURE, X, SIGMAS, NO_NOISE, { eta: 0 });
    const b = await samplers.dpmpp_2m.sample(MIXTURE, X, SIGMAS, NO_NOISE, {});
    expect(maxAbsDiff(a, b)).toBeLessThan(1e-12);
    const c = await samplers.dpmpp_2m_sde.sample(MIXTURE, X, SIGMAS, NO_NOISE, { eta: 0, variant: { solver_type: 'heun' } });
    expect(maxAbsDiff(a, c)).toBeGreaterThan(1e-6);
  });

  it('ddim is euler; uni_pc_bh2 is uni_pc with variant bh2, and bh1 ≠ bh2', async () => {
    const a = await samplers.ddim.sample(MIXTURE, X, SIGMAS, NO_NOISE, {});
    const b = await samplers.euler.sample(MIXTURE, X, SIGMAS, NO_NOISE, {});
    expect(maxAbsDiff(a, b)).toBe(0);
    const c = await samplers.uni_pc_bh2.sample(MIXTURE, X, SIGMAS, NO_NOISE, {});
    const d = await samplers.uni_pc.sample(MIXTURE, X, SIGMAS, NO_NOISE, { variant: { variant: 'bh2' } });
    const e = await samplers.uni_pc.sample(MIXTURE, X, SIGMAS, NO_NOISE, {});
    expect(maxAbsDiff(c, d)).toBe(0);
    expect(maxAbsDiff(c, e)).toBeGreaterThan(1e-6);
    // uni_pc_bh2 forces bh2 even when the options name another variant.
    const f = await samplers.uni_pc_bh2.sample(MIXTURE, X, SIGMAS, NO_NOISE, { variant: { variant: 'bh1' } });
    expect(maxAbsDiff(c, f)).toBe(0);
  });

  it('dpmpp_sde, one step by hand (r = ½, η = 1, replayed noise)', async () => {
    const [s0, s1] = [4, 1];
    const D = (x: number, s: number) => 0.3 + (0.64 / (0.64 + s * s)) * (x - 0.3);
    const n1 = normals64(21, X.length);
    const n2 = normals64(22, X.length);
    const out = await samplers.dpmpp_sde.sample(gaussianDenoiser(0.3, 0.8), X, [s0, s1], replayNoise([n1, n2]), {});
    const ss = Math.sqrt(s0 * s1);
    const a = ancestralStep(s0, ss, 1);
    const b = ancestralStep(s0, s1, 1);
    const expected = Float64Array.from(X, (x, k) => {
      const d0 = D(x, s0);
      const u = (a.sigmaDown / s0) * x + (1 - a.sigmaDown / s0) * d0 + a.sigmaUp * n1[k];
      const d2 = D(u, ss);
      return (b.sigmaDown / s0) * x + (1 - b.sigmaDown / s0) * d2 + b.sigmaUp * n2[k];
    });
    expect(maxAbsDiff(out, expected)).toBeLessThan(1e-12);
  });
});

describe('final-step variants', () => {
  it("lms{final: denoise} ends with x ← D(x_{N−1}); lms{final: lms} extrapolates instead", async () => {
    const { out, xs } = await withHistory((onStep) => samplers.lms.sample(MIXTURE, X, SIGMAS, NO_NOISE, { variant: { final: 'denoise' }, onStep }));
    const last = await MIXTURE(xs[xs.length - 2], SIGMAS[SIGMAS.length - 2]);
    expect(maxAbsDiff(out, last.denoised)).toBe(0);
    const other = await samplers.lms.sample(MIXTURE, X, SIGMAS, NO_NOISE, { variant: { final: 'lms' } });
    expect(maxAbsDiff(out, other)).toBeGreaterThan(1e-6);
  });

  it('ipndm{final: denoise} ends with x ← D(x_{N−1}); {final: multistep} applies the AB formula', async () => {
    const { out, xs } = await withHistory((onStep) => samplers.ipndm.sample(MIXTURE, X, SIGMAS, NO_NOISE, { variant: { final: 'denoise' }, onStep }));
    const last = await MIXTURE(xs[xs.length - 2], SIGMAS[SIGMAS.length - 2]);
    expect(maxAbsDiff(out, last.denoised)).toBe(0);
    const other = await samplers.ipndm.sample(MIXTURE, X, SIGMAS, NO_NOISE, { variant: { final: 'multistep' } });
    expect(maxAbsDiff(out, other)).toBeGreaterThan(1e-6);
  });

  it('unknown variant values are rejected', async () => {
    await expect(samplers.lms.sample(MIXTURE, X, SIGMAS, NO_NOISE, { variant: { final: 'x' } })).rejects.toThrow(RangeError);
    await expect(samplers.ipndm.sample(MIXTURE, X, SIGMAS, NO_NOISE, { variant: { final: 'x' } })).rejects.toThrow(RangeError);
    await expect(samplers.ipndm_v.sample(MIXTURE, X, SIGMAS, NO_NOISE, { variant: { flavor: 'x' } })).rejects.toThrow(RangeError);
    await expect(samplers.dpmpp_2m_sde.sample(MIXTURE, X, SIGMAS, NO_NOISE, { variant: { solver_type: 'x' } })).rejects.toThrow(RangeError);
    await expect(samplers.uni_pc.sample(MIXTURE, X, SIGMAS, NO_NOISE, { variant: { variant: 'bh3' } })).rejects.toThrow(RangeError);
  });
});

describe('coefficient tables', () => {
  it('uni_pc order lists (docs/samplers.md §2.6)', () => {
    expect(uniPcOrders(10)).toEqual([1, 2, 3, 3, 3, 3, 3, 3, 2, 1]);
    expect(uniPcOrders(4)).toEqual([1, 2, 2, 1]);
    expect(uniPcOrders(3)).toEqual([1, 2, 1]);
    expect(uniPcOrders(2)).toEqual([1, 1]);
    expect(uniPcOrders(1)).toEqual([1]);
  });

  it('dpm_fast order lists sum to n: [3,…,2,1] for n ≡ 0, [3,…,n mod 3] otherwise', () => {
    expect(dpmFastOrders(9)).toEqual([3, 3, 2, 1]);
    expect(dpmFastOrders(10)).toEqual([3, 3, 3, 1]);
    expect(dpmFastOrders(11)).toEqual([3, 3, 3, 2]);
    expect(dpmFastOrders(1)).toEqual([1]);
    expect(dpmFastOrders(3)).toEqual([2, 1]);
    for (let n = 1; n <= 60; n++) expect(dpmFastOrders(n).reduce((a, b) => a + b, 0)).toBe(n);
  });

  it('LMS coefficients: order 1 is Δσ; the weights of every order sum to σ_{i+1} − σ_i; exact for cubic derivatives', () => {
    const s = karras(9);
    expect(lmsCoefficient(1, s, 0, 0)).toBeCloseTo(s[1] - s[0], 14);
    for (let i = 3; i < s.length - 1; i++) {
      for (let order = 1; order <= 4; order++) {
        let sum = 0;
        for (let j = 0; j < order; j++) sum += lmsCoefficient(order, s, i, j);
        expect(sum).toBeCloseTo(s[i + 1] - s[i], 12);
      }
      // ∫ τ³ dτ through the order-4 Lagrange interpolant of τ³ at σ_i..σ_{i−3} is exact.
      let integral = 0;
      for (let j = 0; j < 4; j++) integral += lmsCoefficient(4, s, i, j) * s[i - j] ** 3;
      expect(integral).toBeCloseTo((s[i + 1] ** 4 - s[i] ** 4) / 4, 9);
    }
    expect(() => lmsCoefficient(3, s, 1, 0)).toThrow(RangeError);
  });

  it('DEIS: the time map hits its EDM ends; weights sum to Δσ up to the M = 10000 Riemann rule', () => {
    expect(deisTime(0.002)).toBeCloseTo(1e-3, 10);
    expect(deisTime(80)).toBeCloseTo(1, 10);
    const s = withZero(karras(10));
    const c = deisCoefficients(s);
    expect(c[0]).toEqual([]);
    expect(c[c.length - 1]).toEqual([]); // the step to 0 is Euler
    expect(c[1]).toHaveLength(2);
    expect(c[5]).toHaveLength(3);
    for (let i = 1; i < c.length - 1; i++) {
      const sum = c[i].reduce((a, b) => a + b, 0);
      expect(Math.abs(sum - (s[i + 1] - s[i])) / Math.abs(s[i + 1] - s[i])).toBeLessThan(2e-3);
    }
  });

  it('ancestral split: η = 0 → (σ′, 0); σ_down² + σ_up² = σ′²; η = 1 → σ_up = sqrt(σ′²(σ² − σ′²)/σ²)', () => {
    expect(ancestralStep(5, 2, 0)).toEqual({ sigmaDown: 2, sigmaUp: 0 });
    expect(ancestralStep(5, 0, 1)).toEqual({ sigmaDown: 0, sigmaUp: 0 });
    const { sigmaDown, sigmaUp } = ancestralStep(5, 2, 1);
    expect(sigmaUp).toBeCloseTo(Math.sqrt((4 * 21) / 25), 14);
    expect(sigmaDown ** 2 + sigmaUp ** 2).toBeCloseTo(4, 13);
    expect(sigmaDown).toBeCloseTo(4 / 5, 14); // σ′²/σ
    expect(ancestralStep(5, 2, 10)).toEqual({ sigmaDown: 0, sigmaUp: 2 }); // capped at σ′
  });
});

describe('churn (euler, heun, dpm_2)', () => {
  it('s_churn > 0 draws fresh normals from options.randn (not the noise source) and changes the result', async () => {
    for (const id of ['euler', 'heun', 'dpm_2'] as const) {
      let draws = 0;
      const randn = () => {
        draws++;
        return normals64(500 + draws, X.length);
      };
      const plain = await samplers[id].sample(MIXTURE, X, SIGMAS, NO_NOISE, {});
      const churned = await samplers[id].sample(MIXTURE, X, SIGMAS, NO_NOISE, { s_churn: 5, randn });
      expect(draws).toBe(SIGMAS.length - 1);
      expect(maxAbsDiff(plain, churned)).toBeGreaterThan(1e-3);
      // s_tmin/s_tmax restrict it to σ in [1, 5].
      draws = 0;
      await samplers[id].sample(MIXTURE, X, SIGMAS, NO_NOISE, { s_churn: 5, s_tmin: 1, s_tmax: 5, randn });
      expect(draws).toBe(SIGMAS.filter((s) => s >= 1 && s <= 5).length);
      await expect(samplers[id].sample(MIXTURE, X, SIGMAS, NO_NOISE, { s_churn: 5 })).rejects.toThrow(/randn/);
    }
  });

  it('the noise source is never used for churn', async () => {
    const noise = recordingNoise(X.length);
    await samplers.euler.sample(MIXTURE, X, SIGMAS, noise, { s_churn: 2, randn: () => normals64(1, X.length) });
    expect(noise.calls).toHaveLength(0);
  });
});
