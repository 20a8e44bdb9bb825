/**
 * Flow-matching noise tables (gpu-service/src/diffusion/schedules/flow-schedule.ts) against the formulas of
 * diffusers' FlowMatchEulerDiscreteScheduler / FluxPipeline: static shift, FLUX.1-dev's dynamic shift by image
 * size (calculate_shift + exponential time_shift), and `simple` over the table giving diffusers' sigmas.
 */
import { describe, expect, it } from 'vitest';
import { FLOW_SCHEDULER_DEFAULTS, flowSchedulerConfig } from '../../../gpu-service/src/checkpoints/flow-spec';
import { buildSigmas } from '../../../gpu-service/src/diffusion/schedules';
import { flowDynamicMu, flowModelSchedule, shiftSigma } from '../../../gpu-service/src/diffusion/schedules/flow-schedule';

/** diffusers: sigmas = linspace(1, 1/N, N), shifted, then 0 (float32 in the scheduler). */
function diffusersSigmas(n: number, shift: (s: number) => number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(Math.fround(shift(1 + ((1 / n - 1) * i) / (n - 1 || 1))));
  return [...out, 0];
}

describe('flow noise tables', () => {
  it('static shift 3 (SD 3.x): table ends at 1, simple = diffusers for step counts dividing 1000, within 1e-3 otherwise', () => {
    const config = flowSchedulerConfig('sd3', undefined);
    expect(config).toMatchObject({ shift: 3, use_dynamic_shifting: false, num_train_timesteps: 1000 });
    const table = flowModelSchedule(config, 1024, 1024);
    expect(table.sigmaMax).toBe(1);
    expect(table.sigmaMin).toBe(Math.fround((3 * 0.001) / (1 + 2 * 0.001)));
    expect(table.predictionType).toBe('flow');
    const shift = (s: number) => (3 * s) / (1 + 2 * s);
    for (const n of [1, 4, 8, 20, 25, 50]) expect(Array.from(buildSigmas(table, 'simple', n))).toEqual(diffusersSigmas(n, shift));
    // ComfyUI picks table entries at ⌊k·1000/N⌋: 7 steps land within one table entry of diffusers' σ.
    const seven = buildSigmas(table, 'simple', 7);
    diffusersSigmas(7, shift).forEach((s, i) => expect(Math.abs(seven[i] - s)).toBeLessThan(3e-3));
  });

  it('FLUX.1-schnell: shift 1 leaves linspace(1, 1/N, N)', () => {
    const table = flowModelSchedule(flowSchedulerConfig('flux-schnell', undefined), 512, 512);
    expect(Array.from(buildSigmas(table, 'simple', 4))).toEqual([1, 0.75, 0.5, 0.25, 0]);
  });

  it('FLUX.1-dev: μ linear in the token count (0.5 at 256 tokens, 1.15 at 4096), σ′ = e^μ/(e^μ + 1/σ − 1)', () => {
    const config = flowSchedulerConfig('flux-dev', undefined);
    expect(FLOW_SCHEDULER_DEFAULTS['flux-dev'].use_dynamic_shifting).toBe(true);
    expect(flowDynamicMu(config, 256)).toBeCloseTo(0.5, 12);
    expect(flowDynamicMu(config, 4096)).toBeCloseTo(1.15, 12);
    // 1024² is (1024/16)² = 4096 tokens; 512² is 1024 tokens.
    const mu512 = 0.5 + ((1.15 - 0.5) * (1024 - 256)) / (4096 - 256);
    const small = flowModelSchedule(config, 512, 512);
    const large = flowModelSchedule(config, 1024, 1024);
    const shifted = (mu: number) => (s: number) => Math.exp(mu) / (Math.exp(mu) + (1 / s - 1));
    expect(Array.from(buildSigmas(small, 'simple', 4))).toEqual(diffusersSigmas(4, shifted(mu512)));
    expect(Array.from(buildSigmas(large, 'simple', 4))).toEqual(diffusersSigmas(4, shifted(1.15)));
    // Larger images are shifted towards more noise.
    expect(large.sigmas[499]).toBeGreaterThan(small.sigmas[499]);
    expect(() => shiftSigma(config, 0.5)).toThrow(/dynamic shifting needs the image size/);
  });

  it('a model config overrides the defaults; other schedulers and bad shifts are refused', () => {
    expect(flowSchedulerConfig('sd3', { shift: 6, use_dynamic_shifting: false })).toMatchObject({ shift: 6 });
    expect(() => flowSchedulerConfig('sd3', { _class_name: 'EulerDiscreteScheduler' })).toThrow(/is not a flow-matching scheduler/);
    expect(() => flowSchedulerConfig('sd3', { shift: 0 })).toThrow(/shift must be > 0/);
  });
});
