import { describe, expect, it } from 'vitest';
import { applyEmphasis } from '../../../gpu-service/src/diffusion/prompt/apply-emphasis';

const mean = (a: ArrayLike<number>) => Array.from(a).reduce((s, x) => s + x, 0) / a.length;

describe('applyEmphasis (A1111 "Original" emphasis)', () => {
  it('scales the weighted token, then rescales the chunk to its original mean', () => {
    // 3 tokens × 2 dims; token 1 weighted ×2: [1,2, 6,8, 5,6] (sum 28) rescaled by 21/28.
    const hidden = Float32Array.from([1, 2, 3, 4, 5, 6]);
    const out = applyEmphasis(hidden, [1, 2, 1], 3, 2);
    expect(Array.from(out)).toEqual([0.75, 1.5, 4.5, 6, 3.75, 4.5]);
    expect(mean(out)).toBeCloseTo(mean(hidden), 6);
    // Relative to its neighbours the weighted token is exactly twice as strong as before.
    expect(out[2] / out[0]).toBeCloseTo((2 * hidden[2]) / hidden[0], 6);
    expect(Array.from(hidden)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('preserves the mean of a realistic chunk and leaves all-1 weights unchanged', () => {
    const tokens = 77;
    const size = 8;
    const hidden = Float32Array.from({ length: tokens * size }, (_, i) => Math.sin(i * 0.37) + 0.2);
    const weights = Array.from({ length: tokens }, (_, t) => (t >= 3 && t < 6 ? 1.3 : t === 10 ? 0.5 : 1));
    const out = applyEmphasis(hidden, weights, tokens, size);
    expect(mean(out)).toBeCloseTo(mean(hidden), 5);
    const scale = out[0] / hidden[0];
    expect(out[4 * size + 1] / hidden[4 * size + 1]).toBeCloseTo(1.3 * scale, 5);
    expect(out[10 * size + 2] / hidden[10 * size + 2]).toBeCloseTo(0.5 * scale, 5);
    const same = applyEmphasis(hidden, Array(tokens).fill(1), tokens, size);
    expect(same).not.toBe(hidden);
    expect(Array.from(same)).toEqual(Array.from(hidden));
  });

  it('returns the weighted values when the weighted mean is 0 (the mean cannot be restored)', () => {
    const out = applyEmphasis(Float32Array.from([1, 1, -1, -1]), [2, 2], 2, 2);
    expect(Array.from(out)).toEqual([2, 2, -2, -2]);
  });

  it('rejects mismatched sizes', () => {
    expect(() => applyEmphasis(new Float32Array(6), [1, 1, 1], 3, 3)).toThrow(RangeError);
    expect(() => applyEmphasis(new Float32Array(6), [1, 1], 3, 2)).toThrow(RangeError);
  });
});
