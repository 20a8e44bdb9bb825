import { seedValue, type Seed } from '@image-api/shared/seed';
import type { NormalGenerator } from './types';

/** Philox4x32 round multipliers (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11). */
const PHILOX_M0 = 0xd2511f53;
const PHILOX_M1 = 0xcd9e8d57;
/** Philox4x32 key schedule increments (golden ratio and √3 − 1, as 32-bit fractions). */
const PHILOX_W0 = 0x9e3779b9;
const PHILOX_W1 = 0xbb67ae85;
const PHILOX_ROUNDS = 10;
/** float32(2.3283064e-10) ≈ 2^−32, and float32(2^−32·2π): the Box-Muller scales of rng_philox.py. */
const TWO_POW32_INV = Math.fround(2.3283064e-10);
const TWO_POW32_INV_2PI = Math.fround(2.3283064e-10 * 6.2831855);

/** High 32 bits of the 64-bit product of two uint32 values (exact, via 16-bit limbs). */
function mulHi32(a: number, b: number): number {
  const aLo = a & 0xffff;
  const aHi = a >>> 16;
  const bLo = b & 0xffff;
  const bHi = b >>> 16;
  const loLo = aLo * bLo;
  const hiLo = aHi * bLo;
  const loHi = aLo * bHi;
  const cross = (loLo >>> 16) + (hiLo & 0xffff) + loHi; // < 2^33: exact in a double
  return (aHi * bHi + (hiLo >>> 16) + Math.floor(cross / 0x10000)) >>> 0;
}

/**
 * The "NV" noise of AUTOMATIC1111 (modules/rng_philox.py, its default "GPU" RNG source, also
 * stable-diffusion.cpp's `cuda` rng): Philox4x32-10 counter-based numbers, imitating
 * `torch.randn` on an NVIDIA GPU without needing one.
 *
 * Call number `k` (0, 1, 2, … on this generator) draws element `i` of `randn(n)` from
 * Philox4x32-10 with key `(seed mod 2^32, ⌊seed / 2^32⌋)` (the uint64 seed's two halves) and counter `(k, 0, i, 0)`; the first two
 * output words `x, y` give, in float64, `u = x·c + c/2`, `v = y·c₂π + c₂π/2`
 * (c = float32(2.3283064e-10), c₂π = float32(2.3283064e-10·6.2831855)) and
 * `n = float32(sqrt(−2·ln u)·sin v)`.
 *
 * Status: a port of A1111's algorithm, checked against values produced by that algorithm under
 * NumPy (test/diffusion/rng/philox-reference.py). It was NOT checked against torch on a CUDA
 * device; A1111 documents this source as reproducing CUDA noise, but CUDA's own float32
 * transcendental functions may differ from it in the last bits. Equal to A1111's output up to
 * last-bit differences between NumPy's and V8's float64 log/sin (rare after rounding to float32).
 */
export class PhiloxGenerator implements NormalGenerator {
  readonly kind = 'philox' as const;
  readonly seed: Seed;
  private readonly keyLo: number;
  private readonly keyHi: number;
  /** Number of randn calls so far: the first counter word of the next call. */
  private offset = 0;

  /**
   * @param seed a 64-bit seed: a safe integer, or the decimal string of one up to 2^64 − 1 (the key is its
   *   two 32-bit halves, as torch's Philox takes the uint64 seed)
   * @throws RangeError for any other seed
   */
  constructor(seed: Seed) {
    const value = seedValue(seed);
    this.seed = seed;
    this.keyLo = Number(value & 0xffff_ffffn);
    this.keyHi = Number(value >> 32n);
  }

  /**
   * Next `n` standard normals (one Philox call per element; the call index advances by one per
   * randn call, whatever n is, as in rng_philox.py).
   * @param n element count, integer ≥ 0 (< 2^32)
   * @returns float32 array of length n
   * @throws RangeError when n is not an integer in [0, 2^32)
   */
  randn(n: number): Float32Array {
    if (!Number.isSafeInteger(n) || n < 0 || n >= 2 ** 32) {
      throw new RangeError(`randn count must be an integer in [0, 2^32), got ${n}`);
    }
    const out = new Float32Array(n);
    const offset = this.offset >>> 0;
    this.offset++;
    for (let i = 0; i < n; i++) {
      let c0 = offset;
      let c1 = 0;
      let c2 = i;
      let c3 = 0;
      let k0 = this.keyLo;
      let k1 = this.keyHi;
      for (let round = 0; round < PHILOX_ROUNDS; round++) {
        if (round > 0) {
          k0 = (k0 + PHILOX_W0) >>> 0;
          k1 = (k1 + PHILOX_W1) >>> 0;
        }
        const lo0 = Math.imul(c0, PHILOX_M0) >>> 0;
        const hi0 = mulHi32(c0, PHILOX_M0);
        const lo2 = Math.imul(c2, PHILOX_M1) >>> 0;
        const hi2 = mulHi32(c2, PHILOX_M1);
        c0 = (hi2 ^ c1 ^ k0) >>> 0;
        c1 = lo2;
        c2 = (hi0 ^ c3 ^ k1) >>> 0;
        c3 = lo0;
      }
      const u = c0 * TWO_POW32_INV + TWO_POW32_INV / 2;
      const v = c1 * TWO_POW32_INV_2PI + TWO_POW32_INV_2PI / 2;
      out[i] = Math.sqrt(-2 * Math.log(u)) * Math.sin(v);
    }
    return out;
  }
}
