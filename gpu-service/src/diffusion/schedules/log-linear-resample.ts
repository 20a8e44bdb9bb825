import { linspace } from './linspace';

/**
 * Resamples a descending list of noise levels to `count` points by linear interpolation of
 * log σ over a uniform grid, as stable-diffusion.cpp's `loglinear_interp` and ComfyUI's
 * AlignYourSteps/GITS nodes do (docs/samplers.md §1.2, "ays"): reverse to ascending, place the L levels
 * at x_j = j/(L−1), interpolate ln σ piecewise-linearly at linspace(0, 1, count), exponentiate,
 * reverse back. Both ends are reproduced exactly; count = L returns the levels themselves.
 * @param levels descending positive noise levels, length L ≥ 2 (float64)
 * @param count number of output points, integer ≥ 1
 * @returns descending float64 array of length count
 * @throws RangeError when levels has fewer than 2 entries or count < 1
 */
export function logLinearResample(levels: ArrayLike<number>, count: number): Float64Array {
  const L = levels.length;
  if (L < 2) throw new RangeError(`log-linear resampling needs at least 2 levels, got ${L}`);
  const ascendingLog = new Float64Array(L);
  for (let j = 0; j < L; j++) ascendingLog[j] = Math.log(levels[L - 1 - j]);
  const xs = linspace(0, 1, L);
  const targets = linspace(0, 1, count);
  const out = new Float64Array(count);
  let j = 0;
  for (let k = 0; k < count; k++) {
    const x = targets[k];
    while (j < L - 2 && x > xs[j + 1]) j++;
    // At a knot take the level itself (no exp(log σ) round trip); in between, numpy.interp's
    // `slope·(x − x_j) + y_j`.
    if (x <= xs[j]) out[count - 1 - k] = levels[L - 1 - j];
    else if (x >= xs[j + 1]) out[count - 1 - k] = levels[L - 2 - j];
    else {
      const slope = (ascendingLog[j + 1] - ascendingLog[j]) / (xs[j + 1] - xs[j]);
      out[count - 1 - k] = Math.exp(slope * (x - xs[j]) + ascendingLog[j]);
    }
  }
  return out;
}
