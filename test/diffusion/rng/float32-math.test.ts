import { describe, expect, it } from 'vitest';
import { fma32 } from '../../../gpu-service/src/diffusion/rng/float32-math';

const f = Math.fround;
const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** Exact value of a finite float32 as mantissa·2^exponent with BigInt mantissa. */
function exact(x: number): { m: bigint; e: number } {
  F32[0] = x;
  const bits = U32[0];
  const sign = bits >>> 31 ? -1n : 1n;
  const expBits = (bits >>> 23) & 0xff;
  const frac = bits & 0x7fffff;
  if (expBits === 0) return { m: sign * BigInt(frac), e: -149 };
  return { m: sign * BigInt(frac | 0x800000), e: expBits - 150 };
}

/** Correctly rounded float32 of a·b + c by exact BigInt arithmetic (reference, normal range only). */
function referenceFma(a: number, b: number, c: number): number {
  const A = exact(a);
  const B = exact(b);
  const C = exact(c);
  let pm = A.m * B.m;
  let pe = A.e + B.e;
  let cm = C.m;
  let ce = C.e;
  const e = Math.min(pe, ce);
  pm <<= BigInt(pe - e);
  cm <<= BigInt(ce - e);
  pe = e;
  ce = e;
  let m = pm + cm;
  if (m === 0n) return 0;
  const negative = m < 0n;
  if (negative) m = -m;
  // Scale to a 24-bit significand, rounding half to even on the dropped bits.
  let exp = pe;
  const bitLength = m.toString(2).length;
  if (bitLength > 24) {
    const drop = BigInt(bitLength - 24);
    const kept = m >> drop;
    const rest = m - (kept << drop);
    const half = 1n << (drop - 1n);
    let q = kept;
    if (rest > half || (rest === half && (kept & 1n) === 1n)) q += 1n;
    m = q;
    exp += Number(drop);
  }
  const value = Number(m) * 2 ** exp;
  return negative ? -value : value;
}

describe('fma32', () => {
  it('rounds once where float64-then-float32 would round twice', () => {
    // exact a·b + c = 1 + 2^-23 + 2^-24 − 2^-70: just below the float32 midpoint, so the
    // answer is 1 + 2^-23; the float64 sum lands on the midpoint and ties-to-even picks 1 + 2^-22.
    const a = f(1 + 2 ** -23);
    const b = f(2 ** -24 * (1 - 2 ** -23));
    const c = f(1 + 2 ** -23);
    expect(f(a * b + c)).toBe(1 + 2 ** -22);
    expect(fma32(a, b, c)).toBe(1 + 2 ** -23);
    // Mirror case: |exact| = 1 + 2^-24 + 2^-70, just above the midpoint between 1 and 1 + 2^-23.
    const c2 = f(-(1 + 2 ** -23));
    expect(f(a * b + c2)).toBe(-1);
    expect(fma32(a, b, c2)).toBe(-(1 + 2 ** -23));
  });

  it('keeps round-half-to-even on true ties', () => {
    expect(fma32(1, f(2 ** -24), 1)).toBe(1);
    expect(fma32(1, f(2 ** -24), f(1 + 2 ** -23))).toBe(1 + 2 ** -22);
  });

  it('agrees with an exact BigInt reference on random and near-tie inputs', () => {
    let state = 12345;
    const rand = () => {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      return state / 2 ** 32;
    };
    for (let i = 0; i < 3000; i++) {
      const a = f((rand() - 0.5) * 2 ** Math.floor(rand() * 8 - 4));
      const b = f((rand() - 0.5) * 2 ** Math.floor(rand() * 8 - 4));
      const c = f((rand() - 0.5) * 2 ** Math.floor(rand() * 8 - 4));
      expect(fma32(a, b, c)).toBe(referenceFma(a, b, c));
      // Near-ties: a product one float32 half-ulp of c away from c's neighbours, perturbed.
      const c2 = f(1 + Math.floor(rand() * 2 ** 23) * 2 ** -23);
      const b3 = f(2 ** -24 * (1 + (Math.floor(rand() * 2 ** 10) - 512) * 2 ** -23));
      expect(fma32(1, b3, c2)).toBe(referenceFma(1, b3, c2));
      expect(fma32(f(1 + 2 ** -23), b3, c2)).toBe(referenceFma(f(1 + 2 ** -23), b3, c2));
    }
  });
});
