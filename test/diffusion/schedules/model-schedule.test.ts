import { describe, expect, it } from 'vitest';
import {
  modelScheduleFromConfig,
  SD15_SCHEDULER_CONFIG,
  SchedulerConfigSchema,
  sigmaToTimestep,
  timestepToSigma,
} from '../../../gpu-service/src/diffusion/schedules/model-schedule';
import { SD15 } from './sd15';

/** σ_t from ᾱ written as exp(Σ log1p(−β)) — an independent route to the same table. */
function referenceSigmas(betas: number[]): number[] {
  let logAc = 0;
  return betas.map((b) => {
    logAc += Math.log1p(-b);
    return Math.sqrt(-Math.expm1(logAc) / Math.exp(logAc));
  });
}

describe('modelScheduleFromConfig', () => {
  it('builds the SD1.5 table with the documented ends (docs/samplers.md §1.1)', () => {
    expect(SD15.numTrainTimesteps).toBe(1000);
    expect(SD15.sigmas.length).toBe(1000);
    expect(SD15.sigmaMin).toBeCloseTo(0.0291671585, 9);
    expect(SD15.sigmas[1]).toBeCloseTo(0.0413144, 6);
    expect(SD15.sigmaMax).toBeCloseTo(14.6146411, 6);
    // float32 storage, as ComfyUI: σ_max is the float32 14.614641189575195.
    expect(SD15.sigmaMax).toBe(Math.fround(14.6146412));
    expect(SD15.sigmaMin).toBe(SD15.sigmas[0]);
    expect(SD15.predictionType).toBe('epsilon');
    expect(SD15.stepsOffset).toBe(1);
  });

  it('matches the scaled_linear formula at every timestep', () => {
    const a = Math.sqrt(0.00085);
    const b = Math.sqrt(0.012);
    const betas = Array.from({ length: 1000 }, (_, i) => (a + (i / 999) * (b - a)) ** 2);
    const ref = referenceSigmas(betas);
    for (let t = 0; t < 1000; t++) {
      expect(Math.fround(SD15.sigmas[t])).toBe(SD15.sigmas[t]);
      expect(Math.abs(SD15.sigmas[t] - ref[t]) / ref[t]).toBeLessThan(1e-7); // float32 rounding only
    }
    expect(SD15.alphasCumprod[999]).toBeCloseTo(1 / (1 + ref[999] ** 2), 12);
  });

  it('handles a linear-beta v-prediction config', () => {
    const model = modelScheduleFromConfig({
      _class_name: 'DDIMScheduler',
      beta_schedule: 'linear',
      beta_start: 0.0001,
      beta_end: 0.02,
      num_train_timesteps: 1000,
      prediction_type: 'v_prediction',
      clip_sample: false,
    });
    const betas = Array.from({ length: 1000 }, (_, i) => 0.0001 + (i / 999) * (0.02 - 0.0001));
    const ref = referenceSigmas(betas);
    expect(model.predictionType).toBe('v_prediction');
    expect(Math.abs(model.sigmaMax - ref[999]) / ref[999]).toBeLessThan(1e-7);
    expect(model.sigmaMax).toBeGreaterThan(150); // ᾱ_999 ≈ 4.04e-5 → σ_max ≈ 157.4
    expect(Math.abs(model.sigmaMin - ref[0]) / ref[0]).toBeLessThan(1e-7);
  });

  it('supports squaredcos_cap_v2, trained_betas and explicit alphas_cumprod', () => {
    const cosine = modelScheduleFromConfig({ beta_schedule: 'squaredcos_cap_v2', num_train_timesteps: 1000 });
    const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
    expect(cosine.alphasCumprod[499]).toBeCloseTo(alphaBar(0.5) / alphaBar(0), 10);
    const betas = Array.from({ length: 10 }, (_, i) => 0.01 * (i + 1));
    const trained = modelScheduleFromConfig({ num_train_timesteps: 10, trained_betas: betas });
    const ref = referenceSigmas(betas);
    trained.sigmas.forEach((s, t) => expect(s).toBe(Math.fround(ref[t])));
    const explicit = modelScheduleFromConfig({ num_train_timesteps: 10, alphas_cumprod: Array.from(trained.alphasCumprod) });
    expect(explicit.sigmas).toEqual(trained.sigmas);
  });

  it('rescales to zero terminal SNR with a finite σ_max', () => {
    const z = modelScheduleFromConfig({ ...SD15_SCHEDULER_CONFIG, rescale_betas_zero_snr: true });
    expect(z.alphasCumprod[999]).toBe(4.8973451890853435e-8);
    expect(z.sigmaMax).toBeCloseTo(Math.sqrt((1 - 4.8973451890853435e-8) / 4.8973451890853435e-8), 1);
    expect(z.alphasCumprod[0]).toBeCloseTo(SD15.alphasCumprod[0], 12); // first value kept
  });

  it('passes unknown keys through the schema and applies diffusers defaults', () => {
    const parsed = SchedulerConfigSchema.parse({ _class_name: 'EulerDiscreteScheduler', interpolation_type: 'linear' });
    expect(parsed._class_name).toBe('EulerDiscreteScheduler');
    expect(parsed.beta_schedule).toBe('linear');
    expect(parsed.num_train_timesteps).toBe(1000);
  });

  it('throws RangeError naming the problem for invalid configs', () => {
    expect(() => modelScheduleFromConfig(null)).toThrow(RangeError);
    expect(() => modelScheduleFromConfig({ beta_schedule: 'sigmoid' })).toThrow(/beta_schedule/);
    expect(() => modelScheduleFromConfig({ prediction_type: 'sample' })).toThrow(/prediction_type/);
    expect(() => modelScheduleFromConfig({ num_train_timesteps: 1 })).toThrow(/num_train_timesteps/);
    expect(() => modelScheduleFromConfig({ num_train_timesteps: 3, trained_betas: [0.1, 0.2] })).toThrow(/trained_betas/);
    expect(() => modelScheduleFromConfig({ num_train_timesteps: 3, trained_betas: [0.1, 1.2, 0.2] })).toThrow(/beta\[1\]/);
    expect(() => modelScheduleFromConfig({ num_train_timesteps: 3, alphas_cumprod: [0.9, 0.95, 0.5] })).toThrow(/strictly increasing/);
    expect(() => modelScheduleFromConfig({ num_train_timesteps: 2, alphas_cumprod: [1, 0.5] })).toThrow(RangeError);
  });
});

describe('timestep ↔ sigma (docs/samplers.md §1.2)', () => {
  it('returns table entries at integer timesteps and log-interpolates between them', () => {
    expect(timestepToSigma(SD15, 0)).toBe(SD15.sigmas[0]);
    expect(timestepToSigma(SD15, 999)).toBe(SD15.sigmas[999]);
    expect(timestepToSigma(SD15, 500)).toBe(SD15.sigmas[500]);
    expect(timestepToSigma(SD15, 499.5)).toBeCloseTo(Math.sqrt(SD15.sigmas[499] * SD15.sigmas[500]), 12);
    const w = 0.25;
    expect(timestepToSigma(SD15, 10.25)).toBeCloseTo(SD15.sigmas[10] ** (1 - w) * SD15.sigmas[11] ** w, 12);
    expect(timestepToSigma(SD15, -5)).toBe(SD15.sigmaMin);
    expect(timestepToSigma(SD15, 5000)).toBe(SD15.sigmaMax);
    expect(() => timestepToSigma(SD15, Number.NaN)).toThrow(RangeError);
  });

  it('inverts timestepToSigma over the whole range', () => {
    for (let t = 0; t <= 999; t += 0.37) {
      expect(sigmaToTimestep(SD15, timestepToSigma(SD15, t))).toBeCloseTo(t, 8);
    }
    for (const t of [0, 1, 500, 998, 999]) expect(sigmaToTimestep(SD15, SD15.sigmas[t])).toBeCloseTo(t, 10);
  });

  it('clamps outside the table, including σ = 0', () => {
    expect(sigmaToTimestep(SD15, 0)).toBe(0);
    expect(sigmaToTimestep(SD15, 0.001)).toBe(0);
    expect(sigmaToTimestep(SD15, 80)).toBe(999);
    expect(() => sigmaToTimestep(SD15, -1)).toThrow(RangeError);
    expect(() => sigmaToTimestep(SD15, Number.NaN)).toThrow(RangeError);
  });

  it('rounds to the nearest table index in log σ (the int64 timestep input)', () => {
    const lo = SD15.sigmas[300];
    const hi = SD15.sigmas[301];
    const logMid = Math.exp(0.5 * (Math.log(lo) + Math.log(hi)));
    expect(Math.round(sigmaToTimestep(SD15, logMid * 0.9999))).toBe(300);
    expect(Math.round(sigmaToTimestep(SD15, logMid * 1.0001))).toBe(301);
    // the arithmetic midpoint lies above the log midpoint, so it already rounds up
    expect(Math.round(sigmaToTimestep(SD15, (lo + hi) / 2))).toBe(301);
  });
});
