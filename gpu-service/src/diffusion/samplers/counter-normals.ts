/**
 * Counter-based standard normals: a pure function of (key, index), so any value can be recomputed in
 * any order. Used by the Brownian tree (each tree node draws its own vector from its own key).
 * Not torch-compatible by design (docs/samplers.md §0.3: bit parity with torchsde is out of scope).
 *
 * Construction: a 64-bit key (two uint32 words) and the element index are mixed by two rounds of the
 * murmur3 finaliser (Appleby, MurmurHash3 fmix32) into one uint32, mapped to a uniform in (0, 1) and
 * turned into a normal by the inverse normal CDF (P. J. Acklam's rational approximation, relative
 * error < 1.2e-9; the 32-bit uniform limits |z| to ≈ 6.2).
 */
import { seedValue, type Seed } from '@image-api/shared/seed';


/** MurmurHash3's 32-bit finaliser: a bijective avalanche mix of a uint32. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Derive a new 64-bit key (two uint32 words) from a key and a 32-bit tag. */
export function deriveKey(k0: number, k1: number, tag: number): [number, number] {
  const a = fmix32((k0 ^ Math.imul(tag >>> 0, 0x9e3779b9)) >>> 0);
  const b = fmix32((k1 + Math.imul(a ^ tag, 0x85ebca6b)) >>> 0);
  return [fmix32((a ^ (b >>> 7) ^ 0x6a09e667) >>> 0), fmix32((b + a + 0xbb67ae85) >>> 0)];
}

/** Split a uint64 seed (a safe integer, or a decimal string up to 2^64 − 1) into a 64-bit key. @throws RangeError otherwise. */
export function seedKey(seed: Seed): [number, number] {
  const value = seedValue(seed);
  const lo = Number(value & 0xffff_ffffn);
  const hi = Number(value >> 32n);
  return deriveKey(lo, hi, 0x5eed);
}

// Acklam's inverse-normal-CDF coefficients.
const A1 = -3.969683028665376e1, A2 = 2.209460984245205e2, A3 = -2.759285104469687e2;
const A4 = 1.38357751867269e2, A5 = -3.066479806614716e1, A6 = 2.506628277459239;
const B1 = -5.447609879822406e1, B2 = 1.615858368580409e2, B3 = -1.556989798598866e2;
const B4 = 6.680131188771972e1, B5 = -1.328068155288572e1;
const C1 = -7.784894002430293e-3, C2 = -3.223964580411365e-1, C3 = -2.400758277161838;
const C4 = -2.549732539343734, C5 = 4.374664141464968, C6 = 2.938163982698783;
const D1 = 7.784695709041462e-3, D2 = 3.224671290700398e-1, D3 = 2.445134137142996, D4 = 3.754408661907416;
const P_LOW = 0.02425;
const P_HIGH = 1 - P_LOW;

/** Φ⁻¹(p) for p ∈ (0, 1) (Acklam). */
export function inverseNormalCdf(p: number): number {
  if (p < P_LOW) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((C1 * q + C2) * q + C3) * q + C4) * q + C5) * q + C6) / ((((D1 * q + D2) * q + D3) * q + D4) * q + 1);
  }
  if (p > P_HIGH) {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    return -(((((C1 * q + C2) * q + C3) * q + C4) * q + C5) * q + C6) / ((((D1 * q + D2) * q + D3) * q + D4) * q + 1);
  }
  const q = p - 0.5;
  const r = q * q;
  return ((((((A1 * r + A2) * r + A3) * r + A4) * r + A5) * r + A6) * q) / (((((B1 * r + B2) * r + B3) * r + B4) * r + B5) * r + 1);
}

const INV_2_32 = 1 / 4294967296;

/** The standard normal number `index` of key (k0, k1): a pure function of its arguments. */
export function normalAt(k0: number, k1: number, index: number): number {
  const h = fmix32((fmix32((Math.imul(index, 0x9e3779b9) ^ k0) >>> 0) ^ k1) >>> 0);
  return inverseNormalCdf((h + 0.5) * INV_2_32);
}

/** Fill out[offset .. offset+count) with normalAt(k0, k1, 0 .. count−1). */
export function fillNormals(out: Float64Array, offset: number, count: number, k0: number, k1: number): void {
  for (let j = 0; j < count; j++) out[offset + j] = normalAt(k0, k1, j);
}
