import { linspace } from './linspace';
import { assertSteps } from './steps';
import type { ScheduleFn } from './types';

/** ρ of Karras et al. 2022 (EDM), §5 / Eq. 5: the k-diffusion and A1111 default. */
export const KARRAS_RHO = 7;

/**
 * A Karras schedule with exponent ρ (Karras et al. 2022, "Elucidating the Design Space of
 * Diffusion-Based Generative Models", Eq. 5; k-diffusion `get_sigmas_karras`):
 * σ_k = (a + k/(N−1)·(b − a))^ρ, a = σ_max^{1/ρ}, b = σ_min^{1/ρ}, k = 0..N−1 (N = 1 gives σ_max),
 * then 0. σ_min/σ_max are the model table's own ends (float32 values), so for a non-SD1.5 table
 * the schedule follows that model. Float64 maths, results rounded to float32.
 * @param rho exponent > 0
 * @throws RangeError when rho is not a positive finite number
 */
export function createKarrasSchedule(rho: number): ScheduleFn {
  if (!(rho > 0 && Number.isFinite(rho))) throw new RangeError(`karras rho must be a positive number, got ${rho}`);
  return (model, steps) => {
    assertSteps('karras', steps);
    const a = model.sigmaMax ** (1 / rho);
    const b = model.sigmaMin ** (1 / rho);
    const ramp = linspace(0, 1, steps);
    const out = new Float64Array(steps + 1);
    for (let k = 0; k < steps; k++) out[k] = Math.fround((a + ramp[k] * (b - a)) ** rho);
    return out;
  };
}

/** `karras` with ρ = 7. Returns N+1 values, strictly decreasing, first ≈ σ_max, then σ_min, last 0.
 * @throws RangeError when steps is not an integer in [1, MAX_SCHEDULE_STEPS] */
export const karras: ScheduleFn = createKarrasSchedule(KARRAS_RHO);
