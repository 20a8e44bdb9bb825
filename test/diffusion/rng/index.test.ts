import { describe, expect, it } from 'vitest';
import { createNormalGenerator, PhiloxGenerator, TorchCpuGenerator } from '../../../gpu-service/src/diffusion/rng';

describe('createNormalGenerator', () => {
  it('builds the requested kind for the seed', () => {
    const cpu = createNormalGenerator('cpu', 42);
    const philox = createNormalGenerator('philox', 42);
    expect(cpu).toBeInstanceOf(TorchCpuGenerator);
    expect(philox).toBeInstanceOf(PhiloxGenerator);
    expect([cpu.kind, cpu.seed, philox.kind, philox.seed]).toEqual(['cpu', 42, 'philox', 42]);
    expect(cpu.randn(64)).toEqual(new TorchCpuGenerator(42).randn(64));
    expect(cpu.randn(64)).not.toEqual(createNormalGenerator('philox', 42).randn(64));
  });

  it('gives image i of a batch the same noise as a lone job with seed s + i', () => {
    const batch = [0, 1, 2].map((i) => createNormalGenerator('cpu', 1000 + i).randn(256));
    expect(batch[2]).toEqual(createNormalGenerator('cpu', 1002).randn(256));
    expect(batch[0]).not.toEqual(batch[1]);
  });

  it('accepts the full seed range and rejects anything else', () => {
    expect(createNormalGenerator('cpu', 2 ** 53 - 1).randn(4).length).toBe(4);
    expect(createNormalGenerator('cpu', '18446744073709551615').randn(16)).toEqual(createNormalGenerator('cpu', 0xffff_ffff).randn(16));
    expect(createNormalGenerator('philox', '18446744073709551615').seed).toBe('18446744073709551615');
    expect(createNormalGenerator('philox', 0).randn(4).length).toBe(4);
    for (const bad of [-1, 0.5, 2 ** 53, Number.NaN, Infinity, '18446744073709551616', '-3', '']) {
      expect(() => createNormalGenerator('cpu', bad)).toThrow(RangeError);
    }
    expect(() => createNormalGenerator('gpu' as 'cpu', 1)).toThrow(/accepted: cpu, philox/);
  });
});
