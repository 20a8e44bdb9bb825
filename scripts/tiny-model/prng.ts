/**
 * A tiny deterministic pseudo-random generator for the model's fixed "pattern" weights.
 * mulberry32 (Tommy Ettinger, public domain): 32-bit state, period 2³², more than enough for a
 * few thousand weights. Not for sampling noise (the engine has its own seeded generators).
 */

/** A function returning the next uniform number in [0, 1) of the sequence started by `seed`. */
export function createMulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return function next(): number {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
