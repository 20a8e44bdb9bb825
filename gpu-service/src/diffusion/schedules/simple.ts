import { assertSteps } from './steps';
import type { ScheduleFn } from './types';

/**
 * `simple` (ComfyUI `simple_scheduler`, docs/samplers.md §1.2): table entries at integer timesteps
 * `T−1 − trunc(k·(T/N))`, k = 0..N−1, then 0.
 * The index is computed as ComfyUI computes it, with the float64 quotient T/N multiplied by k and
 * truncated; that differs from the exact ⌊k·T/N⌋ when k·T/N is an integer the product misses by an
 * ulp (e.g. N = 38, k = 19: 19·(1000/38) = 499.99999999999994 → index 500, not 499).
 * Returns N+1 float32 values, strictly decreasing for N ≤ T, last 0.
 * @throws RangeError when steps is not an integer in [1, min(T, MAX_SCHEDULE_STEPS)] (more steps
 *   than table entries would repeat sigmas)
 */
export const simple: ScheduleFn = (model, steps) => {
  assertSteps('simple', steps);
  const T = model.numTrainTimesteps;
  if (steps > T) throw new RangeError(`schedule "simple" needs at most ${T} steps for this model, got ${steps}`);
  const stride = T / steps;
  const out = new Float64Array(steps + 1);
  for (let k = 0; k < steps; k++) out[k] = model.sigmas[T - 1 - Math.trunc(k * stride)];
  return out;
};
