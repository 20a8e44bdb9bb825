/**
 * onnxruntime session settings (ORT_* tuning, issue 18) reach onnxruntime and change only speed: a UNet with
 * conv, GroupNorm, attention and the timestep MLP gives the same output under every setting the service
 * accepts as under onnxruntime's defaults.
 */
import { describe, expect, it } from 'vitest';
import { OnnxModel, type SessionOptions } from '../../../gpu-service/src/onnx/session';
import { BENCH_CONTEXT_DIM, buildBenchUnetGraph } from '../../../scripts/bench/bench-unet-graph';

const graph = buildBenchUnetGraph({ c0: 16, c1: 32, heads: 2, timestepDim: 16, seed: 7 }).encode({ docString: 'tuning test' }).model;
const feeds = {
  sample: { data: new Float32Array(2 * 4 * 8 * 8).map((_, i) => Math.sin(i)), dims: [2, 4, 8, 8] },
  timestep: { data: [321], dims: [1] },
  encoder_hidden_states: { data: new Float32Array(2 * 5 * BENCH_CONTEXT_DIM).map((_, i) => Math.cos(i)), dims: [2, 5, BENCH_CONTEXT_DIM] },
};

async function outputOf(options: SessionOptions): Promise<Float32Array> {
  const model = await OnnxModel.open('tuning-unet.onnx', { executionProviders: ['cpu'], ...options }, { model: graph });
  try {
    return Object.values(await model.run(feeds))[0].data;
  } finally {
    await model.release();
  }
}

describe('onnxruntime session settings', () => {
  it.each<[string, SessionOptions]>([
    ['parallel execution with 2 inter-op threads', { executionMode: 'parallel', interOpNumThreads: 2 }],
    ['no CPU arena, no memory pattern, no spinning', { enableCpuMemArena: false, enableMemPattern: false, allowSpinning: false }],
    ['basic graph optimization, 1 intra-op thread', { graphOptimizationLevel: 'basic', intraOpNumThreads: 1 }],
  ])('%s: same UNet output as onnxruntime defaults', async (_name, options) => {
    const reference = await outputOf({});
    const tuned = await outputOf(options);
    expect(tuned.length).toBe(reference.length);
    let worst = 0;
    for (let i = 0; i < reference.length; i++) worst = Math.max(worst, Math.abs(tuned[i] - reference[i]));
    // Fusions and thread splits reorder float sums: equal to float32 rounding, not bit for bit.
    expect(worst).toBeLessThan(1e-4);
    expect(reference.some((v) => v !== 0)).toBe(true);
  });

  it('an invalid setting is refused by onnxruntime, not ignored', async () => {
    await expect(OnnxModel.open('tuning-unet.onnx', { executionProviders: ['cpu'], interOpNumThreads: -3 }, { model: graph })).rejects.toThrow();
  });
});
