import { seedValue, type Seed } from '@image-api/shared/seed';
import { logPs, sincosPs, type SinCos } from './avx-mathfun';
import { Mt19937 } from './mt19937';
import type { NormalGenerator } from './types';

/** 2^−24: scale of torch's 24-bit float uniform. */
const TWO_POW_M24 = 2 ** -24;
/** 2^−53: scale of torch's 53-bit double uniform. */
const TWO_POW_M53 = 2 ** -53;
/** float32(2π), the `two_pi` broadcast constant of normal_fill_AVX2. */
const TWO_PI_F32 = Math.fround(2 * Math.PI);
/** Tensors with at least this many elements take torch's vectorised fill. */
const VECTOR_FILL_MIN = 16;

/**
 * PyTorch's CPU normal generator, bit for bit: after `new TorchCpuGenerator(seed)`, successive
 * `randn(n)` calls return the same float32 values as `torch.manual_seed(seed)` followed by the same
 * sequence of `torch.randn(n)` calls (any shape with n elements, float32, contiguous) on the CPU.
 *
 * Reference: aten/src/ATen/CPUGeneratorImpl.cpp (mt19937, `random()`, `random64()`),
 * aten/src/ATen/core/DistributionsHelper.h + TransformationHelper.h (`uniform_real_distribution`,
 * `normal_distribution<double>` with its cached second value), and
 * aten/src/ATen/native/cpu/DistributionTemplates.h (`normal_kernel`, `normal_fill_AVX2`):
 * - n ≥ 16: all n uniforms `(random() & (2^24−1))·2^−24` are drawn first; each block of 16 is
 *   turned into normals in place by float32 Box-Muller over the pairs (j, j+8), with
 *   `r = sqrt(−2·log(1 − u_j))`, `θ = 2π·u_{j+8}`, `out_j = r·cos θ`, `out_{j+8} = r·sin θ`
 *   (avx_mathfun log/sincos, see ./avx-mathfun.ts). When 16 ∤ n, 16 fresh uniforms overwrite the
 *   last 16 slots and are transformed again. This path neither reads nor clears the cache below.
 * - n < 16: element by element, `normal_distribution<double>`: from two 53-bit uniforms
 *   (`random64() & (2^53−1)`)·2^−53, u1 then u2, `r = sqrt(−2·log1p(−u2))`, `θ = 2π·u1`; returns
 *   `r·cos θ` (rounded to float32) and keeps `r·sin θ` for the next scalar draw.
 *
 * Only the low 32 bits of the seed reach mt19937 (torch does the same: CPUGeneratorImpl's
 * `set_current_seed(uint64_t)` → `mt19937(seed)` → `init_with_uint32`), so seeds s and s + 2^32 give
 * identical noise, up to 2^64 − 1. Results were matched to the AVX2 build that x86-64 torch wheels dispatch
 * to; torch on a CPU without AVX2, or on ARM, uses libm and differs in the last bits.
 */
export class TorchCpuGenerator implements NormalGenerator {
  readonly kind = 'cpu' as const;
  readonly seed: Seed;
  private readonly engine: Mt19937;
  /** torch's `next_double_normal_sample_`: the sine half of the last scalar Box-Muller pair. */
  private cachedNormal: number | null = null;
  private readonly trig: SinCos = { sin: 0, cos: 0 };

  /**
   * @param seed what torch.manual_seed receives, a uint64: a safe integer, or the decimal string of one up
   *   to 2^64 − 1 (shared/src/seed.ts)
   * @throws RangeError for any other seed
   */
  constructor(seed: Seed) {
    this.seed = seed;
    this.engine = new Mt19937(seed);
  }

  /**
   * Next `n` standard normals, as `torch.randn(n)` (float32) would return them at this point of the
   * stream.
   * @param n element count, integer ≥ 0
   * @returns float32 array of length n
   * @throws RangeError when n is not a non-negative safe integer
   */
  randn(n: number): Float32Array {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`randn count must be an integer ≥ 0, got ${n}`);
    const out = new Float32Array(n);
    if (n >= VECTOR_FILL_MIN) this.vectorFill(out);
    else for (let i = 0; i < n; i++) out[i] = this.scalarNormal();
    return out;
  }

  /** normal_fill_AVX2: uniforms for the whole tensor first, then Box-Muller per block of 16. */
  private vectorFill(data: Float32Array): void {
    const n = data.length;
    for (let i = 0; i < n; i++) data[i] = (this.engine.nextUint32() & 0xffffff) * TWO_POW_M24;
    for (let i = 0; i + VECTOR_FILL_MIN <= n; i += VECTOR_FILL_MIN) this.boxMuller16(data, i);
    if (n % VECTOR_FILL_MIN !== 0) {
      const start = n - VECTOR_FILL_MIN;
      for (let i = start; i < n; i++) data[i] = (this.engine.nextUint32() & 0xffffff) * TWO_POW_M24;
      this.boxMuller16(data, start);
    }
  }

  /** normal_fill_16_AVX2 on data[at .. at+16), all in float32 (mean 0, std 1: fmadd(n, 1, 0) = n). */
  private boxMuller16(data: Float32Array, at: number): void {
    const f = Math.fround;
    const trig = this.trig;
    for (let j = at; j < at + 8; j++) {
      const u1 = f(1 - data[j]); // [0, 1) → (0, 1] for the log
      const radius = f(Math.sqrt(f(-2 * logPs(u1))));
      sincosPs(f(TWO_PI_F32 * data[j + 8]), trig);
      // + 0 turns −0 into +0, as fmadd(n, 1, +0) does.
      data[j] = f(radius * trig.cos) + 0;
      data[j + 8] = f(radius * trig.sin) + 0;
    }
  }

  /** One value of at::normal_distribution<double>(0, 1), using and refilling the cache. */
  private scalarNormal(): number {
    if (this.cachedNormal !== null) {
      const cached = this.cachedNormal;
      this.cachedNormal = null;
      return cached;
    }
    const u1 = this.uniform53();
    const u2 = this.uniform53();
    const r = Math.sqrt(-2 * Math.log1p(-u2));
    const theta = 2 * Math.PI * u1;
    this.cachedNormal = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** uniform_real_distribution<double>(0, 1): the low 53 bits of random64() = (hi ≪ 32) | lo, × 2^−53. */
  private uniform53(): number {
    const hi = this.engine.nextUint32();
    const lo = this.engine.nextUint32();
    return ((hi & 0x1fffff) * 2 ** 32 + lo) * TWO_POW_M53;
  }
}
