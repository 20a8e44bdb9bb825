import { z } from 'zod';

/**
 * Seeds: unsigned 64-bit integers, as `torch.manual_seed` takes them (ComfyUI clients send seeds up to
 * 2^64 − 1). JSON numbers above 2^53 − 1 cannot be held exactly by a JavaScript number, so a seed travels
 * as a {@link Seed}: a number while it is a safe integer, otherwise its decimal string. The edge parses
 * request bodies without rounding such numbers (edge/src/inputs/lossless-json.ts), and every receipt shows
 * the seed exactly as it was sent.
 */
export type Seed = number | string;

/** The largest seed: 2^64 − 1 (torch.manual_seed's uint64 range). */
export const MAX_SEED = 18_446_744_073_709_551_615n;
/** The same bound as a decimal string, for messages and documentation. */
export const MAX_SEED_TEXT = MAX_SEED.toString();
const DECIMAL = /^(0|[1-9][0-9]{0,19})$/;

/**
 * The canonical {@link Seed} for an integer in [0, 2^64 − 1]: a number when ≤ 2^53 − 1, else its decimal string.
 * @throws RangeError outside that range.
 */
export function canonicalSeed(value: bigint): Seed {
  if (value < 0n || value > MAX_SEED) throw new RangeError(`seed must be an integer from 0 to ${MAX_SEED_TEXT}, got ${value}`);
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
}

/**
 * The exact value of a seed.
 * @param seed a safe non-negative integer, or a decimal string up to 2^64 − 1.
 * @throws RangeError for anything else (a rounded number above 2^53 − 1 included).
 */
export function seedValue(seed: Seed): bigint {
  if (typeof seed === 'number') {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be an integer from 0 to ${MAX_SEED_TEXT}, got ${seed}`);
    return BigInt(seed);
  }
  if (!DECIMAL.test(seed) || BigInt(seed) > MAX_SEED) throw new RangeError(`seed must be an integer from 0 to ${MAX_SEED_TEXT}, got "${seed}"`);
  return BigInt(seed);
}

/**
 * The seed of image `index` of a batch whose first image has `seed` (image i uses seed + i).
 * @throws RangeError when seed + index exceeds 2^64 − 1.
 */
export function seedAt(seed: Seed, index: number): Seed {
  return canonicalSeed(seedValue(seed) + BigInt(index));
}

/** Whether images 0..count−1 of a batch starting at `seed` all have seeds ≤ 2^64 − 1. */
export function seedRangeFits(seed: Seed, count: number): boolean {
  return seedValue(seed) + BigInt(Math.max(count, 1) - 1) <= MAX_SEED;
}

/**
 * Parse a seed as a public request carries it: a JSON integer (exact: the edge parses bodies losslessly, so
 * a large one arrives as its digits), or a decimal string (multipart forms, clients that quote big seeds).
 * @param allowRandom accept −1 ("random"), returned as −1.
 * @returns the canonical Seed, −1, or an error message naming the rule.
 */
export function parseSeed(raw: unknown, allowRandom: boolean): { ok: true; seed: Seed | -1 } | { ok: false; message: string } {
  const rule = `an integer from ${allowRandom ? '-1 (random)' : '0'} to ${MAX_SEED_TEXT} (2^64 − 1)`;
  if (allowRandom && (raw === -1 || raw === '-1')) return { ok: true, seed: -1 };
  if (typeof raw === 'number') {
    if (Number.isSafeInteger(raw) && raw >= 0) return { ok: true, seed: raw };
    if (Number.isInteger(raw) && raw > Number.MAX_SAFE_INTEGER) {
      return { ok: false, message: `seed ${raw} was rounded before it reached the API; send seeds above 2^53 − 1 as exact JSON integers or decimal strings` };
    }
    return { ok: false, message: `seed must be ${rule}` };
  }
  if (typeof raw === 'string') {
    const text = raw.trim();
    if (DECIMAL.test(text) && BigInt(text) <= MAX_SEED) return { ok: true, seed: canonicalSeed(BigInt(text)) };
  }
  return { ok: false, message: `seed must be ${rule}` };
}

/** zod schema of a public seed field that also accepts −1 (random). Output: a Seed or −1. */
export function publicSeedSchema(options: { allowRandom: boolean }) {
  return z
    .union([z.number(), z.string()])
    .transform((raw, ctx): Seed | -1 => {
      const parsed = parseSeed(raw, options.allowRandom);
      if (parsed.ok) return parsed.seed;
      ctx.addIssue({ code: 'custom', message: parsed.message });
      return z.NEVER;
    })
    .describe(
      `Seed: ${options.allowRandom ? '-1 = random, else ' : ''}an integer up to ${MAX_SEED_TEXT} (2^64 − 1), as a JSON integer (read exactly) or a decimal string. Image i uses seed + i.`,
    );
}

/** zod schema of a resolved seed (GenerationJob, receipts, responses): a safe integer, or a decimal string above 2^53 − 1. */
export const SeedSchema = z
  .union([z.number().int().min(0).max(Number.MAX_SAFE_INTEGER), z.string().regex(DECIMAL)])
  .refine((seed) => typeof seed === 'number' || (BigInt(seed) <= MAX_SEED && BigInt(seed) > BigInt(Number.MAX_SAFE_INTEGER)), {
    message: `seed must be an integer from 0 to ${MAX_SEED_TEXT}; a decimal string only above 2^53 − 1`,
  })
  .describe(`Seed actually used: a JSON integer up to 2^53 − 1, else its decimal string (up to ${MAX_SEED_TEXT}).`);
