import { seedValue, type Seed } from '@image-api/shared/seed';

/** Number of 32-bit words of Mersenne-Twister state. */
const MT_N = 624;
/** Twist offset. */
const MT_M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;

/**
 * The 32-bit Mersenne Twister MT19937 exactly as PyTorch's CPU generator runs it
 * (`aten/src/ATen/core/MT19937RNGEngine.h`, `at::mt19937`): Matsumoto & Nishimura (1998) with the
 * standard Knuth initialisation `s[i] = 1812433253·(s[i−1] ⊕ (s[i−1] ≫ 30)) + i`, seeded with the
 * low 32 bits of the 64-bit seed (so `torch.manual_seed(s)` and `torch.manual_seed(s + 2^32)` give
 * the same stream on the CPU; `lowSeedWord` extracts that word from any 64-bit seed).
 */
export class Mt19937 {
  private readonly state = new Uint32Array(MT_N);
  private index = MT_N;

  /**
   * @param seed a 64-bit seed (a safe integer or the decimal string of one up to 2^64 − 1); only its low
   *   32 bits are used, as in torch (`init_with_uint32`: `state[0] = seed & 0xffffffff`).
   * @throws RangeError when the seed is not such an integer.
   */
  constructor(seed: Seed) {
    const s = this.state;
    s[0] = lowSeedWord(seed);
    for (let i = 1; i < MT_N; i++) {
      const prev = s[i - 1];
      s[i] = (Math.imul(1812433253, prev ^ (prev >>> 30)) + i) >>> 0;
    }
  }

  /** Next 32-bit output as an unsigned integer in [0, 2^32). */
  nextUint32(): number {
    if (this.index >= MT_N) this.twist();
    let y = this.state[this.index++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** Regenerates all 624 state words (the "twist"). */
  private twist(): void {
    const s = this.state;
    for (let i = 0; i < MT_N; i++) {
      const y = (s[i] & UPPER_MASK) | (s[(i + 1) % MT_N] & LOWER_MASK);
      s[i] = s[(i + MT_M) % MT_N] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    this.index = 0;
  }
}

/** The low 32 bits of a 64-bit seed, `seed & 0xffffffff` (what torch's mt19937 is seeded with). @throws RangeError for an invalid seed. */
export function lowSeedWord(seed: Seed): number {
  return Number(seedValue(seed) & 0xffff_ffffn);
}
