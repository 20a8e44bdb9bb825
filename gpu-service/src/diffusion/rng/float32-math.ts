/**
 * Single-rounding float32 fused multiply-add `round32(a·b + c)` for float32 inputs, as the FMA3
 * instruction `vfmadd…ps` computes it (IEEE 754 fusedMultiplyAdd, round to nearest even).
 *
 * `a·b` of two float32 values is exact in float64 (48 significant bits); the float64 sum `s` is one
 * rounding and `Math.fround(s)` a second one. Double rounding can only go wrong when `s` lands
 * exactly on a float32 midpoint while the exact sum does not; then the sign of the exact TwoSum
 * error (Knuth, TAOCP vol. 2 §4.2.2) says on which side the exact sum lies. A midpoint is
 * recognised without bit tricks: with `r = fround(s)` and `d = s − r`, `s + d` is the other
 * neighbouring float32 exactly when `s` is halfway. Valid when the result is zero or a normal
 * float32 (|r| ≥ 2^−126), which holds for every use in this folder.
 *
 * @param a float32 value (a number already passed through Math.fround)
 * @param b float32 value
 * @param c float32 value
 * @returns the float32 result as a number
 */
export function fma32(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const r = Math.fround(s);
  const d = s - r;
  if (d === 0) return r;
  const other = s + d;
  if (Math.fround(other) !== other) return r; // not halfway: r is the correct rounding
  const bv = s - p;
  const err = p - (s - bv) + (c - bv);
  if (err === 0) return r; // a true tie: round half to even, as fround did
  return err > 0 === r > s ? r : other;
}
