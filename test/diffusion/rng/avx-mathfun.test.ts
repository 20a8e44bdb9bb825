import { describe, expect, it } from 'vitest';
import { logPs, sincosPs } from '../../../gpu-service/src/diffusion/rng/avx-mathfun';

const f = Math.fround;

describe('avx_mathfun emulation', () => {
  it('logPs is a float32 log within a few float32 ulps on (0, 1]', () => {
    expect(logPs(1)).toBe(0);
    for (let i = 1; i <= 4096; i++) {
      const x = f(i / 4096);
      const got = logPs(x);
      expect(f(got)).toBe(got);
      expect(Math.abs(got - Math.log(x))).toBeLessThanOrEqual(4 * 2 ** -24 * Math.max(Math.abs(Math.log(x)), 2 ** -1));
    }
    expect(logPs(f(2 ** -24))).toBeCloseTo(-24 * Math.LN2, 5);
  });

  it('sincosPs gives float32 sine and cosine in every octant of [−2π, 2π]', () => {
    const out = { sin: 0, cos: 0 };
    for (let i = -2000; i <= 2000; i++) {
      const theta = f((i / 2000) * 2 * Math.PI);
      sincosPs(theta, out);
      expect(f(out.sin)).toBe(out.sin);
      expect(Math.abs(out.sin - Math.sin(theta))).toBeLessThan(3e-7);
      expect(Math.abs(out.cos - Math.cos(theta))).toBeLessThan(3e-7);
    }
  });
});
