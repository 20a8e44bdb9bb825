import { inverseRegularizedIncompleteBeta } from './incomplete-beta';
import { assertSteps } from './steps';
import type { ScheduleFn } from './types';

/** Shape parameters of ComfyUI's `beta` scheduler (Lee et al. 2024, "Beta Sampling is All You Need"). */
export const BETA_SCHEDULE_ALPHA = 0.6;
export const BETA_SCHEDULE_BETA = 0.6;

/** Round half to even, as numpy.rint. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * A beta schedule (ComfyUI `beta_scheduler`, docs/samplers.md §1.2): with u_k = 1 − k·(1/N) for
 * k = 0..N−1 (numpy `linspace(0, 1, N, endpoint=False)`), t_k = rint(Q(u_k)·(T−1)) where Q is the
 * Beta(α, β) quantile; consecutive duplicates of t are skipped; output σ_table[t_k], then 0.
 * For α = β and u = ½ (k = N/2, N even) Q is exactly ½ and Q·999 = 499.5 sits on a rounding tie:
 * that case is computed exactly and gives t = 500, as ComfyUI does (a numerical inverse landing a
 * hair below ½ would give 499). SD1.5, N = 10 → indices 999, 959, 876, 765, 637, 500, 362, 234, 123, 40.
 * May return fewer than N+1 entries when timesteps collide (large N); strictly decreasing, last 0.
 * @param alpha Beta shape α > 0
 * @param beta Beta shape β > 0
 * @throws RangeError for non-positive shapes
 */
export function createBetaSchedule(alpha: number, beta: number): ScheduleFn {
  if (!(alpha > 0 && beta > 0 && Number.isFinite(alpha) && Number.isFinite(beta))) {
    throw new RangeError(`beta schedule needs positive shapes, got ${alpha}, ${beta}`);
  }
  return (model, steps) => {
    assertSteps('beta', steps);
    const last = model.numTrainTimesteps - 1;
    const step = 1 / steps;
    const picked: number[] = [];
    let previous = -1;
    for (let k = 0; k < steps; k++) {
      const q = alpha === beta && 2 * k === steps ? 0.5 : inverseRegularizedIncompleteBeta(1 - k * step, alpha, beta);
      const t = roundHalfEven(q * last);
      if (t !== previous) picked.push(model.sigmas[t]);
      previous = t;
    }
    const out = new Float64Array(picked.length + 1);
    out.set(picked);
    return out;
  };
}

/** `beta` with α = β = 0.6 (ComfyUI's defaults).
 * @throws RangeError when steps is not an integer in [1, MAX_SCHEDULE_STEPS] */
export const beta: ScheduleFn = createBetaSchedule(BETA_SCHEDULE_ALPHA, BETA_SCHEDULE_BETA);
