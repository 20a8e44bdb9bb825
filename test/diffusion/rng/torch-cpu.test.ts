import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TorchCpuGenerator } from '../../../gpu-service/src/diffusion/rng/torch-cpu';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const FIXTURE = path.resolve(REPO_ROOT, '../shared/fixtures/torch-randn/cases.json');
const hasFixture = existsSync(FIXTURE);
if (!hasFixture) console.warn(`skipping torch randn fixture tests: ${FIXTURE} is absent (the ../shared folder beside the repo)`);

interface RandnCase {
  seed: number;
  shape: number[];
  numel: number;
  values: number[] | null;
  first128: number[] | null;
  last128: number[] | null;
  sum: number;
  sumsq: number;
}
interface SequentialCase {
  seed: number;
  shape: number[];
  first_draw_sum: number;
  second_draw: number[];
}
interface Fixture {
  cases: RandnCase[];
  sequential: SequentialCase[];
}

/** Indices where `got` differs from the float32 values `expected` (bitwise, -0 ≠ +0 included). */
function mismatches(got: Float32Array, expected: number[], offset = 0): number[] {
  const bad: number[] = [];
  expected.forEach((e, i) => {
    if (!Object.is(Math.fround(e), got[offset + i])) bad.push(offset + i);
  });
  return bad;
}

function sums(v: Float32Array): { sum: number; sumsq: number } {
  let sum = 0;
  let sumsq = 0;
  for (const x of v) {
    sum += x;
    sumsq += x * x;
  }
  return { sum, sumsq };
}

const fixture: Fixture = hasFixture ? JSON.parse(readFileSync(FIXTURE, 'utf8')) : { cases: [], sequential: [] };

describe.skipIf(!hasFixture)('TorchCpuGenerator against torch.randn fixtures', () => {
  it('has scalar-path, vectorised and large cases to check', () => {
    expect(fixture.cases.some((c) => c.numel < 16)).toBe(true);
    expect(fixture.cases.some((c) => c.numel >= 16 && c.numel % 16 !== 0)).toBe(true);
    expect(fixture.cases.some((c) => c.first128 !== null)).toBe(true);
    expect(fixture.sequential.length).toBeGreaterThan(0);
  });

  for (const c of fixture.cases) {
    it(`seed ${c.seed}, shape [${c.shape.join(', ')}] is bit-identical`, () => {
      const got = new TorchCpuGenerator(c.seed).randn(c.numel);
      expect(got.length).toBe(c.numel);
      if (c.values) expect(mismatches(got, c.values)).toEqual([]);
      if (c.first128) expect(mismatches(got, c.first128)).toEqual([]);
      if (c.last128) expect(mismatches(got, c.last128, c.numel - c.last128.length)).toEqual([]);
      // Sums cover the unlisted middle of large tensors: one float32 ulp anywhere moves the sum by ~1e-7.
      const { sum, sumsq } = sums(got);
      expect(Math.abs(sum - c.sum)).toBeLessThan(1e-9);
      expect(Math.abs(sumsq - c.sumsq) / c.sumsq).toBeLessThan(1e-12);
    });
  }

  // torch.manual_seed takes a uint64 and seeds mt19937 with its low 32 bits (CPUGeneratorImpl::set_current_seed
  // → at::mt19937(seed) → init_with_uint32: state[0] = seed & 0xffffffff), so every fixture case also holds for
  // the seeds with other high words, up to 2^64 − 1: those are passed as exact decimal strings.
  for (const c of fixture.cases) {
    const high = (BigInt(c.seed) + (0xffff_ffffn << 32n)).toString();
    it(`seed ${high} (low word ${c.seed}), shape [${c.shape.join(', ')}] gives torch's values for its low 32 bits`, () => {
      const got = new TorchCpuGenerator(high).randn(c.numel);
      if (c.values) expect(mismatches(got, c.values)).toEqual([]);
      if (c.first128) expect(mismatches(got, c.first128)).toEqual([]);
      if (c.last128) expect(mismatches(got, c.last128, c.numel - c.last128.length)).toEqual([]);
      expect(Math.abs(sums(got).sum - c.sum)).toBeLessThan(1e-9);
    });
  }

  it('continues the stream on a second draw (how a batch continues in torch)', () => {
    for (const s of fixture.sequential) {
      const n = s.shape.reduce((a, b) => a * b, 1);
      const g = new TorchCpuGenerator(s.seed);
      expect(Math.abs(sums(g.randn(n)).sum - s.first_draw_sum)).toBeLessThan(1e-9);
      expect(mismatches(g.randn(n), s.second_draw)).toEqual([]);
    }
  });
});

describe('TorchCpuGenerator behaviour', () => {
  it('is deterministic per seed and differs between seeds', () => {
    const a = new TorchCpuGenerator(1234).randn(1000);
    const b = new TorchCpuGenerator(1234).randn(1000);
    const c = new TorchCpuGenerator(1235).randn(1000);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  it('uses only the low 32 bits of the seed, like torch on the CPU', () => {
    const a = new TorchCpuGenerator(7).randn(64);
    const b = new TorchCpuGenerator(7 + 2 ** 32).randn(64);
    const c = new TorchCpuGenerator(7 + 5 * 2 ** 40).randn(64);
    expect(b).toEqual(a);
    expect(c).toEqual(a);
  });

  it('keeps the sine half of a scalar Box-Muller pair for the next scalar draw', () => {
    // torch: randn(1) then randn(1) returns the cos and the cached sin of one pair == randn(2).
    const pairs = new TorchCpuGenerator(99).randn(2);
    const g = new TorchCpuGenerator(99);
    expect([g.randn(1)[0], g.randn(1)[0]]).toEqual([pairs[0], pairs[1]]);
    // An odd scalar draw leaves one value cached; 15 more values then start with it.
    const h = new TorchCpuGenerator(99);
    const three = h.randn(3);
    const next = h.randn(15);
    const six = new TorchCpuGenerator(99).randn(4);
    expect(Array.from(three)).toEqual(Array.from(six.subarray(0, 3)));
    expect(next[0]).toBe(six[3]);
  });

  it('redraws the last 16 values when the size is not a multiple of 16', () => {
    // n = 17: values 1..16 come from fresh uniforms, so only value 0 matches the n = 32 fill.
    const a = new TorchCpuGenerator(5).randn(17);
    const b = new TorchCpuGenerator(5).randn(32);
    expect(a[0]).toBe(b[0]);
    expect(a[1]).not.toBe(b[1]);
  });

  it('produces standard normal statistics', () => {
    const v = new TorchCpuGenerator(2024).randn(4 * 64 * 64);
    const { sum, sumsq } = sums(v);
    const mean = sum / v.length;
    const variance = sumsq / v.length - mean * mean;
    expect(Math.abs(mean)).toBeLessThan(0.05); // 4σ of the sample mean is 0.031
    expect(Math.abs(variance - 1)).toBeLessThan(0.05);
  });

  it('fills 4×128×128 normals quickly', () => {
    new TorchCpuGenerator(0).randn(65536); // warm-up (JIT)
    // The fastest of several runs: robust to other processes sharing the CPU.
    let best = Infinity;
    for (let s = 1; s <= 8; s++) {
      const t0 = performance.now();
      new TorchCpuGenerator(s).randn(65536);
      best = Math.min(best, performance.now() - t0);
    }
    expect(best).toBeLessThan(30); // ~6 ms on an idle 2-core runner
  });

  it('rejects seeds and counts it cannot serve', () => {
    expect(() => new TorchCpuGenerator(-1)).toThrow(RangeError);
    expect(() => new TorchCpuGenerator(1.5)).toThrow(RangeError);
    expect(() => new TorchCpuGenerator(2 ** 53)).toThrow(RangeError); // rounded: only exact strings above 2^53 − 1
    expect(() => new TorchCpuGenerator('18446744073709551616')).toThrow(RangeError);
    expect(() => new TorchCpuGenerator('12a')).toThrow(RangeError);
    expect(new TorchCpuGenerator('18446744073709551615').randn(4).length).toBe(4);
    expect(() => new TorchCpuGenerator(0).randn(-1)).toThrow(RangeError);
    expect(new TorchCpuGenerator(0).randn(0).length).toBe(0);
  });
});
