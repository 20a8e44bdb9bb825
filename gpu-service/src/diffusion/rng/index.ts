import { seedValue, type Seed } from '@image-api/shared/seed';
import { PhiloxGenerator } from './philox';
import { TorchCpuGenerator } from './torch-cpu';
import type { NormalGenerator } from './types';

export type { NormalGenerator } from './types';
export { TorchCpuGenerator } from './torch-cpu';
export { PhiloxGenerator } from './philox';

/** The generator kinds a job may name (GenerationJob.rng). */
export const NORMAL_GENERATOR_KINDS = ['cpu', 'philox'] as const;

/**
 * A fresh normal generator for one image's seed.
 * - `cpu`: PyTorch CPU `torch.manual_seed(seed); torch.randn(...)`, bit for bit (ComfyUI,
 *   AUTOMATIC1111 with its CPU RNG option).
 * - `philox`: AUTOMATIC1111's NV/"GPU" Philox source (see PhiloxGenerator for its verification status).
 * @param kind 'cpu' | 'philox'
 * @param seed a uint64 seed: a safe integer, or a decimal string up to 2^64 − 1 (shared/src/seed.ts)
 * @throws RangeError for an unknown kind or a seed outside that range
 */
export function createNormalGenerator(kind: 'cpu' | 'philox', seed: Seed): NormalGenerator {
  seedValue(seed); // throws RangeError for an invalid seed
  switch (kind) {
    case 'cpu':
      return new TorchCpuGenerator(seed);
    case 'philox':
      return new PhiloxGenerator(seed);
    default:
      throw new RangeError(`unknown noise generator "${String(kind)}"; accepted: ${NORMAL_GENERATOR_KINDS.join(', ')}`);
  }
}
