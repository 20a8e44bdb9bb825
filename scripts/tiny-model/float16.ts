/**
 * IEEE 754 binary16 ("float16") conversion, for writing float16 ONNX initializers and reading
 * float16 tensors back (Node 20 has no Float16Array; onnxruntime-node hands float16 data over as
 * Uint16Array bit patterns).
 */

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/**
 * The float16 bit pattern nearest to `value` (rounded to nearest, ties to even, as numpy's
 * `astype(np.float16)`): the value is first rounded to float32, then to float16. Overflow gives
 * ±Infinity, NaN stays NaN, tiny values become float16 subnormals or ±0.
 */
export function float32ToFloat16Bits(value: number): number {
  F32[0] = value;
  const x = U32[0];
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0); // Inf / NaN
  let e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow → Inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow → ±0
    mantissa |= 0x800000; // make the implicit bit explicit, then shift into a subnormal
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mantissa & ((1 << shift) - 1);
    let result = mantissa >>> shift;
    if (rest > half || (rest === half && (result & 1))) result += 1;
    return sign | result;
  }
  // Normal: keep 10 mantissa bits, round to nearest even (a carry may bump the exponent, correctly).
  const rest = mantissa & 0x1fff;
  let result = (e << 10) | (mantissa >>> 13);
  if (rest > 0x1000 || (rest === 0x1000 && (result & 1))) result += 1;
  return sign | result;
}

/** The number a float16 bit pattern (0..0xffff) stands for. */
export function float16BitsToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}
