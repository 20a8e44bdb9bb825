import type { Seed } from '@image-api/shared/seed';

/**
 * A seeded normal generator whose successive draws continue one stream, as a torch.Generator does:
 * randn(n) returns the same float32 values as `torch.randn(n)` would at that point of the stream
 * (for the 'cpu' kind: torch.manual_seed(seed) then torch.randn(shape) on the CPU, mt19937).
 */
export interface NormalGenerator {
  readonly kind: 'cpu' | 'philox';
  readonly seed: Seed;
  randn(n: number): Float32Array;
}
