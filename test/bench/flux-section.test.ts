/**
 * The `flux` bench section on a small shape (the real one is 1.3 B parameters): it writes the synthetic BF16
 * transformer with every tensor of the architecture, converts it and runs it in child processes, and reports the
 * figures the README quotes; the file is reused by a second run, the graph folder is removed.
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fluxTensorShapes } from '../../gpu-service/src/checkpoints/detect/flux-config';
import { openSafetensors } from '../../gpu-service/src/weights/safetensors';
import { runFluxSection } from '../../scripts/bench/flux/flux-section';
import { fluxBenchConfig, FLUX_BENCH_SHAPE, type FluxBenchShape } from '../../scripts/bench/flux/flux-shape';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('bench flux section', () => {
  it('the default shape is FLUX.1 at 2 double + 4 single blocks: 1.30 B parameters', () => {
    let n = 0;
    for (const dims of fluxTensorShapes(fluxBenchConfig(FLUX_BENCH_SHAPE)).values()) n += dims.reduce((a, b) => a * b, 1);
    expect(n).toBe(1_299_925_056);
    expect(() => fluxBenchConfig({ ...FLUX_BENCH_SHAPE, hiddenSize: 1000 })).toThrow(/multiple of 128/);
  });

  it('writes, converts and times a small shape in child processes', async () => {
    const modelsDir = await mkdtemp(path.join(tmpdir(), 'flux-bench-'));
    dirs.push(modelsDir);
    const shape: FluxBenchShape = { hiddenSize: 128, depth: 1, depthSingleBlocks: 1, size: 64, textTokens: 8 };
    const report = await runFluxSection({ modelsDir, threads: 1, shape, repeats: 2 }, () => undefined);
    const file = await openSafetensors(path.join(modelsDir, 'flux-bench-128-1x1.safetensors'));
    try {
      expect(new Map([...file.entries].map(([k, e]) => [k, e.shape]))).toEqual(fluxTensorShapes(fluxBenchConfig(shape)));
      expect([...file.entries.values()].every((e) => e.dtype === 'BF16')).toBe(true);
    } finally {
      await file.close();
    }
    expect(report.parameters).toBe([...fluxTensorShapes(fluxBenchConfig(shape)).values()].reduce((n, d) => n + d.reduce((a, b) => a * b, 1), 0));
    expect(report.checkpoint).toMatchObject({ generated: true, dtype: 'BF16', bytes: (await stat(path.join(modelsDir, 'flux-bench-128-1x1.safetensors'))).size });
    // The float32 graph's weights are twice the BF16 file's tensor bytes.
    expect(report.conversion.graph_bytes).toBeGreaterThan(2 * report.parameters * 2);
    expect(report.step.runs_ms).toHaveLength(2);
    expect(report.step.ms_fastest).toBe(Math.min(...report.step.runs_ms));
    expect(report.conversion.peak_rss_bytes).toBeGreaterThan(0);
    expect(await readdir(modelsDir)).toEqual(['flux-bench-128-1x1.safetensors']);
    const again = await runFluxSection({ modelsDir, threads: 1, shape, repeats: 1 }, () => undefined);
    expect(again.checkpoint.generated).toBe(false);
  }, 120_000);
});
