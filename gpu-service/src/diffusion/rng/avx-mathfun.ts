import { fma32 } from './float32-math';

/*
 * One-lane emulation of the float32 `log256_ps` and `sincos256_ps` of avx_mathfun.h (Giovanni
 * Garberoglio's AVX port of Julien Pommier's sse_mathfun, Cephes polynomials by S. Moshier), which
 * PyTorch's `normal_fill_16_AVX2` (aten/src/ATen/native/cpu/DistributionTemplates.h) uses for its
 * Box-Muller transform. Every operation is a float32 operation (Math.fround after each step), and
 * each multiply that feeds an add is fused exactly as GCC contracts it in the shipped torch wheels
 * (-ffp-contract=fast with -mfma); these choices decide the last bit and are pinned by the torch
 * randn fixtures in the tests.
 */

const f = Math.fround;
// Scratch views for float32 bit manipulation.
const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

const MIN_NORM_POS = 1.1754943508222875e-38; // 2^-126, the smallest normal float32
const SQRTHF = f(0.707106781186547524);
const LOG_P0 = f(7.0376836292e-2);
const LOG_P1 = f(-1.151461031e-1);
const LOG_P2 = f(1.167699874e-1);
const LOG_P3 = f(-1.2420140846e-1);
const LOG_P4 = f(1.4249322787e-1);
const LOG_P5 = f(-1.6668057665e-1);
const LOG_P6 = f(2.0000714765e-1);
const LOG_P7 = f(-2.4999993993e-1);
const LOG_P8 = f(3.3333331174e-1);
const LOG_Q1 = f(-2.1219444e-4);
const LOG_Q2 = f(0.693359375);

const FOPI = f(1.27323954473516); // 4/π
const MINUS_DP1 = f(-0.78515625);
const MINUS_DP2 = f(-2.4187564849853515625e-4);
const MINUS_DP3 = f(-3.77489497744594108e-8);
const SINCOF_P0 = f(-1.9515295891e-4);
const SINCOF_P1 = f(8.3321608736e-3);
const SINCOF_P2 = f(-1.6666654611e-1);
const COSCOF_P0 = f(2.443315711809948e-5);
const COSCOF_P1 = f(-1.388731625493765e-3);
const COSCOF_P2 = f(4.166664568298827e-2);

/**
 * Natural logarithm of a positive float32 as avx_mathfun's `log256_ps` computes it (Cephes `logf`:
 * frexp split, x ∈ [√½, √2), degree-8 polynomial). Error ≈ 1 ulp against the true log; the point is
 * bit equality with torch, not accuracy.
 * @param x0 float32 value in (0, ∞) (the Box-Muller `1 − u`, in [2^−24, 1])
 * @returns float32 result as a number
 */
export function logPs(x0: number): number {
  F32[0] = Math.max(x0, MIN_NORM_POS);
  const bits = U32[0];
  // Keep the mantissa, force the exponent of 0.5: x ∈ [0.5, 1).
  U32[0] = (bits & ~0x7f800000) | 0x3f000000;
  let x = F32[0];
  let e = ((bits >>> 23) & 0xff) - 127 + 1; // small integer: exact in float32
  let tmp = 0;
  if (x < SQRTHF) {
    e -= 1;
    tmp = x;
  }
  x = f(f(x - 1) + tmp);
  const z = f(x * x);
  let y = fma32(LOG_P0, x, LOG_P1);
  y = fma32(y, x, LOG_P2);
  y = fma32(y, x, LOG_P3);
  y = fma32(y, x, LOG_P4);
  y = fma32(y, x, LOG_P5);
  y = fma32(y, x, LOG_P6);
  y = fma32(y, x, LOG_P7);
  y = fma32(y, x, LOG_P8);
  y = f(y * x);
  y = fma32(y, z, f(e * LOG_Q1));
  y = fma32(z, -0.5, y);
  x = f(x + y);
  return fma32(e, LOG_Q2, x);
}

/** Result of {@link sincosPs}: float32 sine and cosine. */
export interface SinCos {
  sin: number;
  cos: number;
}

/**
 * Sine and cosine of a float32 angle as avx_mathfun's `sincos256_ps` computes them (Cephes
 * `sinf`/`cosf`: octant reduction by 4/π with the three-part π/4 "extended precision modular
 * arithmetic", then the sine or cosine minimax polynomial per octant).
 * @param theta float32 angle in radians (torch passes 2π·u ∈ [0, 2π))
 * @param out object receiving the float32 results (reused to avoid allocation per call)
 * @returns `out`
 */
export function sincosPs(theta: number, out: SinCos): SinCos {
  const negative = theta < 0 || Object.is(theta, -0);
  let x = Math.abs(theta);
  // cvttps: truncate toward zero, then j = (j + 1) & ~1 (Cephes).
  let j = Math.trunc(f(x * FOPI));
  j = (j + 1) & ~1;
  const yq = j; // exact in float32 for the angles used here
  const swapSin = (j & 4) !== 0;
  const usePolySinForSin = (j & 2) === 0;
  const cosNegative = (~(j - 2) & 4) !== 0;
  x = fma32(yq, MINUS_DP1, x);
  x = fma32(yq, MINUS_DP2, x);
  x = fma32(yq, MINUS_DP3, x);
  const z = f(x * x);
  // Cosine polynomial; its last multiply by z fuses into the subtraction of z/2 (an fmsub).
  let yc = fma32(COSCOF_P0, z, COSCOF_P1);
  yc = fma32(yc, z, COSCOF_P2);
  yc = f(yc * z);
  yc = fma32(yc, z, -f(z * 0.5));
  yc = f(yc + 1);
  // Sine polynomial.
  let ys = fma32(SINCOF_P0, z, SINCOF_P1);
  ys = fma32(ys, z, SINCOF_P2);
  ys = f(ys * z);
  ys = fma32(ys, x, x);
  const sinV = usePolySinForSin ? ys : yc;
  const cosV = usePolySinForSin ? yc : ys;
  out.sin = negative !== swapSin ? -sinV : sinV;
  out.cos = cosNegative ? -cosV : cosV;
  return out;
}
