/**
 * The default noise source: fresh i.i.d. N(0, 1) from each image's own seeded generator
 * (docs/samplers.md §0.3). One generator per image of the batch; a call returns the concatenation of every
 * image's own draw, so image i gets the same noise whether it is sampled alone or in a batch.
 */
import type { NormalGenerator } from '../rng/types';
import type { NoiseSource } from './types';

/**
 * @param generators one per image, in batch order (their streams continue those used for x_T).
 * @param perImageNumel elements per image (C·H·W of the latents).
 * @returns NoiseSource returning a Float32Array of generators.length × perImageNumel values; the sigma
 *   arguments are ignored.
 * @throws RangeError for an empty generator list or a non-positive perImageNumel; RangeError at call time
 *   if a generator returns the wrong number of values.
 */
export function createIidNoise(generators: readonly NormalGenerator[], perImageNumel: number): NoiseSource {
  if (generators.length === 0) throw new RangeError('createIidNoise needs at least one generator');
  if (!Number.isInteger(perImageNumel) || perImageNumel <= 0) throw new RangeError(`perImageNumel must be a positive integer, got ${perImageNumel}`);
  const gens = [...generators];
  return function iidNoise(): Float32Array {
    const out = new Float32Array(gens.length * perImageNumel);
    gens.forEach((g, i) => {
      const draw = g.randn(perImageNumel);
      if (draw.length !== perImageNumel) throw new RangeError(`generator ${i} returned ${draw.length} values, expected ${perImageNumel}`);
      out.set(draw, i * perImageNumel);
    });
    return out;
  };
}
