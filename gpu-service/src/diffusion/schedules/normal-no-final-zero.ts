import { sigmasAtUniformTimesteps } from './normal';
import { assertSteps } from './steps';
import type { ScheduleFn } from './types';

/**
 * `normal_no_final_zero`: normal(N+1) without its trailing 0, i.e. σ(t_k) for
 * t = linspace(T−1, 0, N+1), ending at σ_min instead of 0. Our stand-in for AUTOMATIC1111's UniPC
 * "time_uniform" grid (docs/samplers.md §3.3 and §4.3, "UniPC"): uni_pc then stops at σ_min.
 * Returns N+1 float32-rounded values, strictly decreasing, last = σ_min (> 0) — the one
 * schedule here that does not end in 0.
 * @throws RangeError when steps is not an integer in [1, MAX_SCHEDULE_STEPS]
 */
export const normalNoFinalZero: ScheduleFn = (model, steps) => {
  assertSteps('normal_no_final_zero', steps);
  return sigmasAtUniformTimesteps(model, steps + 1);
};
