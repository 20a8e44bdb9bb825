import { describe, expect, it } from 'vitest';
import { canonicalSeed, parseSeed, publicSeedSchema, seedAt, SeedSchema, seedValue } from '@image-api/shared/seed';

describe('uint64 seeds', () => {
  it('keep seeds above 2^53 − 1 exact as decimal strings, safe integers as numbers', () => {
    expect(canonicalSeed(42n)).toBe(42);
    expect(canonicalSeed(2n ** 53n - 1n)).toBe(9007199254740991);
    expect(canonicalSeed(2n ** 53n + 1n)).toBe('9007199254740993');
    expect(seedValue('18446744073709551615')).toBe(2n ** 64n - 1n);
    expect(() => canonicalSeed(2n ** 64n)).toThrow(RangeError);
  });

  it('image i uses seed + i, exactly, and never past 2^64 − 1', () => {
    expect(seedAt('18446744073709551613', 2)).toBe('18446744073709551615');
    expect(seedAt(9007199254740991, 2)).toBe('9007199254740993');
    expect(() => seedAt('18446744073709551615', 1)).toThrow(RangeError);
  });

  it('parses public seeds: integers, decimal strings, −1 where random is allowed', () => {
    expect(parseSeed(7, true)).toEqual({ ok: true, seed: 7 });
    expect(parseSeed('18446744073709551615', false)).toEqual({ ok: true, seed: '18446744073709551615' });
    expect(parseSeed('12', false)).toEqual({ ok: true, seed: 12 });
    expect(parseSeed(-1, true)).toEqual({ ok: true, seed: -1 });
    for (const bad of [-1, -2, 1.5, '18446744073709551616', '0x10', '1e3', '', null]) {
      const parsed = parseSeed(bad, false);
      expect(parsed.ok, String(bad)).toBe(false);
    }
    // A number that JSON.parse already rounded is refused with a message saying how to send it.
    const rounded = parseSeed(18446744073709551615, true);
    expect(rounded.ok).toBe(false);
    expect(!rounded.ok && rounded.message).toMatch(/rounded.*decimal strings/);
  });

  it('the public schema names the rule; the job schema refuses a string for a safe seed', () => {
    const result = publicSeedSchema({ allowRandom: true }).safeParse('abc');
    expect(result.success).toBe(false);
    expect(result.error?.issues[0].message).toContain('18446744073709551615');
    expect(SeedSchema.safeParse('18446744073709551615').success).toBe(true);
    expect(SeedSchema.safeParse('5').success).toBe(false);
    expect(SeedSchema.safeParse(2 ** 53).success).toBe(false);
  });
});
