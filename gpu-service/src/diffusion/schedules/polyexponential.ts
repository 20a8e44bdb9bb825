import { linspace } from './linspace';
import { assertSteps } from './steps';
import type { ScheduleFn } from './types';

/**
 * A polyexponential schedule (k-diffusion `get_sigmas_polyexponential`, A1111 "Polyexponential"):
 * σ_k = exp(r_k^ρ·(ln σ_max − ln σ_min) + ln σ_min) with r = linspace(1, 0, N), then 0.
 * ρ = 1 is the exponential schedule. Float64 maths, float32-rounded results.
 * @param rho exponent > 0
 * @throws RangeError when rho is not a positive finite number
 */
export function createPolyexponentialSchedule(rho: number): ScheduleFn {
  if (!(rho > 0 && Number.isFinite(rho))) throw new RangeError(`polyexponential rho must be a positive number, got ${rho}`);
  return (model, steps) => {
    assertSteps('polyexponential', steps);
    const lnMin = Math.log(model.sigmaMin);
    const span = Math.log(model.sigmaMax) - lnMin;
    const ramp = linspace(1, 0, steps);
    const out = new Float64Array(steps + 1);
    for (let k = 0; k < steps; k++) out[k] = Math.fround(Math.exp(ramp[k] ** rho * span + lnMin));
    return out;
  };
}

/** `polyexponential` with the k-diffusion default ρ = 1. Returns N+1 values, strictly decreasing, last 0.
 * @throws RangeError when steps is not an integer in [1, MAX_SCHEDULE_STEPS] */
export const polyexponential: ScheduleFn = createPolyexponentialSchedule(1);
