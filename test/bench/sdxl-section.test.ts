/**
 * The sdxl bench section end to end on a small SDXL-shaped checkpoint (sgm prefixes, CLIP-L + OpenCLIP bigG with a
 * projection, label_emb over pooled + 6 time ids, per-level transformer depth; the real-size one needs ~10 GB):
 * conversion with its peak RSS, the first open, and one UNet CFG step per size (with text_embeds and time ids),
 * each in its own child process, reported as a table. No speed is asserted.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatBenchReport } from '../../scripts/bench/report-table';
import type { BenchReport } from '../../scripts/bench/run-benchmarks';
import { runSdxlSection } from '../../scripts/bench/sdxl/sdxl-section';
import { SMALL_SDXL_CHECKPOINT } from '../helpers/small-sdxl-checkpoint';

let modelsDir: string;
beforeAll(async () => {
  modelsDir = await mkdtemp(path.join(tmpdir(), 'bench-sdxl-'));
});
afterAll(async () => {
  if (modelsDir) await rm(modelsDir, { recursive: true, force: true });
});

describe('npm run bench: the sdxl section', () => {
  it('measures conversion (time, peak RSS), the first open and one UNet CFG step per size', async () => {
    const r = await runSdxlSection({ modelsDir, threads: 0, sizes: { unetSizes: [64, 128] }, checkpoint: SMALL_SDXL_CHECKPOINT }, () => {});
    expect(r.checkpoint.generated).toBe(true);
    expect(r.conversion.converted).toBe(true);
    expect(r.conversion.entryBytes).toBeGreaterThan(r.checkpoint.bytes);
    expect(r.conversion.peak_rss_over_checkpoint).toBeCloseTo(r.conversion.maxRssBytes / r.checkpoint.bytes, 6);
    expect(r.first_open).toMatchObject({ converted: false, optimized: true });
    expect(Object.keys(r.unet_ms_per_cfg_step)).toEqual(['64', '128']);
    for (const size of ['64', '128']) {
      expect(r.unet_ms_per_cfg_step[size]).toBeGreaterThan(0);
      expect(r.unet_step_peak_rss_bytes[size]).toBeGreaterThan(0);
    }
    expect(r.load_average).toHaveLength(6);
    const machine = { cpus: 2, cpu_model: 'test', execution_provider: 'cpu', intra_op_threads: 0, onnxruntime_node: '1', node: 'v20', platform: 'linux', date: 'now', quick: true, load_average: [0, 0] } as const;
    const table = formatBenchReport({ sections: ['sdxl'], sdxl: r, machine } as BenchReport);
    for (const row of ['peak RSS while converting', 'UNet ms per CFG step (batch 2), 128x128', 'first open']) expect(table).toContain(row);
  }, 180_000);
});
