import { linspace } from './linspace';
import { assertSteps } from './steps';
import type { ScheduleFn } from './types';

/**
 * `exponential` (k-diffusion `get_sigmas_exponential`, docs/samplers.md §1.2): exp(linspace(ln σ_max,
 * ln σ_min, N)), then 0 — equal steps in log σ between the model table's own ends.
 * Returns N+1 float32-rounded values, strictly decreasing, last 0.
 * @throws RangeError when steps is not an integer in [1, MAX_SCHEDULE_STEPS]
 */
export const exponential: ScheduleFn = (model, steps) => {
  assertSteps('exponential', steps);
  const logs = linspace(Math.log(model.sigmaMax), Math.log(model.sigmaMin), steps);
  const out = new Float64Array(steps + 1);
  for (let k = 0; k < steps; k++) out[k] = Math.fround(Math.exp(logs[k]));
  return out;
};
