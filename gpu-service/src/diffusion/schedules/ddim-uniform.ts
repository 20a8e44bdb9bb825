import { assertSteps } from './steps';
import type { ScheduleFn } from './types';

/**
 * `ddim_uniform` (ComfyUI `ddim_scheduler`, docs/samplers.md §1.2): stride c = max(⌊T/N⌋, 1); the table
 * entries at timesteps 1, 1+c, 1+2c, … < T, taken from high to low, then 0.
 * The length is NOT always N+1: N = 10 gives 10 steps (901…1), N = 30 gives 31 (991, 958, …, 1),
 * and σ_{T−1} is never included. Returns float32 values, strictly decreasing, last 0.
 * Unlike ComfyUI it does not drop the 0 for models whose σ(1) ≈ 0.
 * @throws RangeError when steps is not an integer in [1, MAX_SCHEDULE_STEPS]
 */
export const ddimUniform: ScheduleFn = (model, steps) => {
  assertSteps('ddim_uniform', steps);
  const T = model.numTrainTimesteps;
  const stride = Math.max(Math.floor(T / steps), 1);
  const picked: number[] = [];
  for (let t = 1; t < T; t += stride) picked.push(model.sigmas[t]);
  const out = new Float64Array(picked.length + 1);
  for (let k = 0; k < picked.length; k++) out[k] = picked[picked.length - 1 - k];
  return out;
};
