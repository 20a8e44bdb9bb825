/**
 * `count` evenly spaced float64 values from `start` to `end`, both included, computed as
 * `torch.linspace` does on the CPU (aten/src/ATen/native/cpu/RangeFactoriesKernel.cpp): the first
 * half counts up from `start`, the second half down from `end`, so both ends are exact and the
 * values agree bit for bit with ComfyUI / k-diffusion schedule grids built in float64.
 * `linspace(a, b, 1) = [a]`.
 * @param start first value
 * @param end last value (when count ≥ 2)
 * @param count number of points, integer ≥ 1
 * @throws RangeError when count is not a positive integer
 */
export function linspace(start: number, end: number, count: number): Float64Array {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`linspace needs a positive integer count, got ${count}`);
  const out = new Float64Array(count);
  if (count === 1) {
    out[0] = start;
    return out;
  }
  const step = (end - start) / (count - 1);
  const halfway = Math.floor(count / 2);
  for (let i = 0; i < count; i++) out[i] = i < halfway ? start + step * i : end - step * (count - i - 1);
  return out;
}
