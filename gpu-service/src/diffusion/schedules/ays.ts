import { logLinearResample } from './log-linear-resample';
import { assertSteps } from './steps';
import type { ScheduleFn } from './types';

/**
 * Align Your Steps 10-step noise levels for SD1.5 (Sabour, Fidler & Kreis 2024, "Align Your Steps:
 * Optimizing Sampling Schedules in Diffusion Models"; NVIDIA's published table as used by
 * stable-diffusion.cpp `ays` and ComfyUI `AlignYourStepsScheduler`), σ_max … σ_min.
 */
export const AYS_SD15_LEVELS: readonly number[] = [
  14.6146412293, 6.4745760956, 3.8636745985, 2.694615152, 1.8841921177, 1.3943805092, 0.9642583904, 0.6523686016,
  0.3977456272, 0.1515232662, 0.0291671582,
];

/** Align Your Steps 10-step noise levels for SDXL (same source). */
export const AYS_SDXL_LEVELS: readonly number[] = [
  14.6146412293, 6.3184485287, 3.7681790315, 2.1811480769, 1.3405244945, 0.8620721141, 0.5550693289, 0.3798540708,
  0.2332364134, 0.1114188177, 0.0291671582,
];

/**
 * An AYS schedule over a fixed level table (docs/samplers.md §1.2, "ays"): the table itself when N+1
 * equals its length, else the table log-linearly resampled to N+1 points; the last entry is then
 * overwritten with 0. The tables are fixed SD1.5/SDXL noise levels: the model's own σ table is not
 * consulted (stable-diffusion.cpp likewise supports only these model families).
 * Returns N+1 float32-rounded values, strictly decreasing, last 0.
 * @param id schedule id for messages
 * @param levels descending noise levels
 */
export function createAysSchedule(id: string, levels: readonly number[]): ScheduleFn {
  return (_model, steps) => {
    assertSteps(id, steps);
    const out = steps + 1 === levels.length ? Float64Array.from(levels) : logLinearResample(levels, steps + 1);
    for (let k = 0; k < steps; k++) out[k] = Math.fround(out[k]);
    out[steps] = 0;
    return out;
  };
}

/** `ays`: SD1.5 table. @throws RangeError when steps is not an integer in [1, MAX_SCHEDULE_STEPS] */
export const ays: ScheduleFn = createAysSchedule('ays', AYS_SD15_LEVELS);

/** `ays_sdxl`: SDXL table. @throws RangeError when steps is not an integer in [1, MAX_SCHEDULE_STEPS] */
export const aysSdxl: ScheduleFn = createAysSchedule('ays_sdxl', AYS_SDXL_LEVELS);
