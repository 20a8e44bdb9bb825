/**
 * Element-wise tensor arithmetic for the samplers. Every function returns a fresh tensor of the same
 * kind (Float32Array or Float64Array) as its first tensor argument and never mutates its inputs, so a
 * sampler never touches the caller's latents and a tensor handed to onStep stays valid.
 * Coefficients are float64 JS numbers; the per-element products are computed in float64 and rounded
 * once when stored into a Float32Array.
 */
import type { Tensor } from '../tensor';

/** A zero tensor of the same kind and length as `like`. */
export function allocLike(like: Tensor): Tensor {
  return like instanceof Float64Array ? new Float64Array(like.length) : new Float32Array(like.length);
}

/** A copy of `x` (same kind). */
export function copyTensor(x: Tensor): Tensor {
  return x instanceof Float64Array ? new Float64Array(x) : new Float32Array(x);
}

/** Throws RangeError unless every tensor has the length of the first. */
export function assertSameLength(...tensors: ArrayLike<number>[]): void {
  const n = tensors[0].length;
  for (const t of tensors) {
    if (t.length !== n) throw new RangeError(`tensor length mismatch: ${t.length} vs ${n}`);
  }
}

/** a·x + b·y, same kind as x. */
export function lincomb2(a: number, x: Tensor, b: number, y: ArrayLike<number>): Tensor {
  const out = allocLike(x);
  for (let k = 0; k < out.length; k++) out[k] = a * x[k] + b * y[k];
  return out;
}

/** a·x + b·y + c·z, same kind as x. */
export function lincomb3(a: number, x: Tensor, b: number, y: ArrayLike<number>, c: number, z: ArrayLike<number>): Tensor {
  const out = allocLike(x);
  for (let k = 0; k < out.length; k++) out[k] = a * x[k] + b * y[k] + c * z[k];
  return out;
}

/** Σ_j coeffs[j]·tensors[j], same kind as tensors[0]. Terms with a zero coefficient are skipped. */
export function lincomb(coeffs: readonly number[], tensors: readonly ArrayLike<number>[]): Tensor {
  const first = tensors[0] as Tensor;
  const out = allocLike(first);
  const n = out.length;
  const acc = new Float64Array(n);
  for (let j = 0; j < coeffs.length; j++) {
    const c = coeffs[j];
    if (c === 0) continue;
    const t = tensors[j];
    for (let k = 0; k < n; k++) acc[k] += c * t[k];
  }
  out.set(acc);
  return out;
}

/** x + c·y as a fresh tensor (same kind as x). */
export function addScaled(x: Tensor, c: number, y: ArrayLike<number>): Tensor {
  const out = allocLike(x);
  for (let k = 0; k < out.length; k++) out[k] = x[k] + c * y[k];
  return out;
}

/**
 * The probability-flow ODE slope d(x, σ) = (x − D)/σ (k-diffusion `to_d`), same kind as x.
 * @throws RangeError when sigma is not positive.
 */
export function toDerivative(x: Tensor, denoised: ArrayLike<number>, sigma: number): Tensor {
  if (!(sigma > 0)) throw new RangeError(`derivative needs sigma > 0, got ${sigma}`);
  const out = allocLike(x);
  for (let k = 0; k < out.length; k++) out[k] = (x[k] - denoised[k]) / sigma;
  return out;
}

/** A copy of `src` in the kind of `like` (used for x ← D steps, so the result keeps x's dtype). */
export function cloneAs(like: Tensor, src: ArrayLike<number>): Tensor {
  const out = allocLike(like);
  out.set(src);
  return out;
}
