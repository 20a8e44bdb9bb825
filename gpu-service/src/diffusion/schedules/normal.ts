import { linspace } from './linspace';
import { timestepToSigma } from './model-schedule';
import { assertSteps } from './steps';
import type { ModelSchedule, ScheduleFn } from './types';

/**
 * σ at `count` timesteps evenly spaced from T−1 down to 0, float32-rounded (no trailing 0).
 * Shared by normal, normal_no_final_zero and (with one point dropped) sgm_uniform.
 */
export function sigmasAtUniformTimesteps(model: ModelSchedule, count: number): Float64Array {
  const ts = linspace(model.numTrainTimesteps - 1, 0, count);
  return ts.map((t) => Math.fround(timestepToSigma(model, t)));
}

/**
 * `normal` (ComfyUI) = `discrete` (stable-diffusion.cpp) = A1111 "Automatic" (docs/samplers.md §1.2):
 * σ(t_k) for t = linspace(T−1, 0, N) with log-σ interpolation, then 0.
 * Returns N+1 float32-rounded values (float64 array), strictly decreasing, last 0.
 * Unlike ComfyUI it does not switch to N+1 points without a 0 for models whose σ(0) ≈ 0
 * (no such table passes modelScheduleFromConfig).
 * @throws RangeError when steps is not an integer in [1, MAX_SCHEDULE_STEPS]
 */
export const normal: ScheduleFn = (model, steps) => {
  assertSteps('normal', steps);
  const out = new Float64Array(steps + 1);
  out.set(sigmasAtUniformTimesteps(model, steps));
  return out;
};
