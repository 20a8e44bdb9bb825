/**
 * Smoke test of `npm run bench -- --json --quick --only pipeline,throughput`: stdout is exactly one JSON object
 * carrying the figures issues 3 and 5 ask for. No speed is asserted (speed goals live in the benchmark only). The
 * sd15 section (minutes on the real-size model) has its own test on a small checkpoint (sd15-section.test.ts).
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');

describe('npm run bench -- --json --quick --only pipeline,throughput', () => {
  it('prints one JSON object with overhead share, steps per second and throughput', () => {
    // -s keeps npm's own "> image-api bench" banner off stdout.
    const run = spawnSync('npm', ['run', '-s', 'bench', '--', '--json', '--quick', '--only', 'pipeline,throughput'], { cwd: root, encoding: 'utf8', timeout: 110_000 });
    expect(run.status, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines, run.stdout).toHaveLength(1);
    const report = JSON.parse(lines[0]);
    expect(report.sections).toEqual(['pipeline', 'throughput']);
    expect(report.sd15).toBeUndefined();

    for (const model of ['tiny-analytic', 'bench-512']) {
      const share = report.pipeline_overhead_share[model];
      expect(share, model).toBeGreaterThanOrEqual(0);
      expect(share, model).toBeLessThan(1);
      expect(report.steps_per_second[model], model).toBeGreaterThan(0);
    }
    // Throughput on the tiny model and where the UNet dominates (bench-512 at 256²), with latency percentiles.
    expect(Object.keys(report.throughput_images_per_second).sort()).toEqual(['bench-512', 'tiny-analytic']);
    for (const [model, figures] of Object.entries(report.throughput_images_per_second as Record<string, Record<string, number>>)) {
      const points = ['c1', 'c1_nobatch', 'c4', 'c4_nobatch', 'c8', 'c8_nobatch'];
      expect(Object.keys(figures).sort(), model).toEqual(points.flatMap((p) => [p, `${p}_p50_ms`, `${p}_p95_ms`]).sort());
      for (const [key, value] of Object.entries(figures)) expect(Number.isFinite(value) && value > 0, `${model} ${key}`).toBe(true);
      for (const p of points) expect(figures[`${p}_p95_ms`], `${model} ${p}`).toBeGreaterThanOrEqual(figures[`${p}_p50_ms`]);
    }
    // Batched images are byte-identical to the unbatched ones of the same seeds.
    for (const section of report.throughput) {
      expect(section.images_compared, section.job.model).toBeGreaterThan(0);
      expect(section.images_differing, section.job.model).toBe(0);
    }
    expect(report.machine.onnxruntime_node).toMatch(/^\d+\.\d+/);
    expect(run.stderr).toContain('bench: pipeline: bench-512 at 512x512');
  }, 120_000);
});
