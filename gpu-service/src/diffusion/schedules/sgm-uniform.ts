import { sigmasAtUniformTimesteps } from './normal';
import { assertSteps } from './steps';
import type { ScheduleFn } from './types';

/**
 * `sgm_uniform` (ComfyUI; the SGM / SDXL-Turbo "uniform" discretisation, docs/samplers.md §1.2):
 * σ(t_k) for t = linspace(T−1, 0, N+1) with its last point (t = 0) dropped, then 0.
 * Identity: normal(N+1) without its second-to-last entry equals sgm_uniform(N).
 * Returns N+1 float32-rounded values, strictly decreasing, last 0.
 * @throws RangeError when steps is not an integer in [1, MAX_SCHEDULE_STEPS]
 */
export const sgmUniform: ScheduleFn = (model, steps) => {
  assertSteps('sgm_uniform', steps);
  const out = sigmasAtUniformTimesteps(model, steps + 1);
  out[steps] = 0;
  return out;
};
