/**
 * `npm run bench` options: --only picks sections (in the bench's own order), refuses unknown names with the usage
 * text, and every section but the opt-in sdxl and flux runs by default; --quick shrinks the sd15 section's timed work, not what it measures.
 */
import { describe, expect, it } from 'vitest';
import { BENCH_SECTIONS, benchSizes, parseBenchOptions } from '../../scripts/bench/bench-options';

describe('bench options', () => {
  it('runs every section by default and only the named ones with --only', () => {
    // sdxl (real-size SDXL, ~10 GB of memory), flux and gguf (real-width FLUX.1 blocks) run only when named.
    expect(parseBenchOptions([]).sections).toEqual(BENCH_SECTIONS.filter((s) => s !== 'sdxl' && s !== 'flux' && s !== 'gguf' && s !== 'edge-path' && s !== 'throughput-sd15'));
    expect(parseBenchOptions(['--only', 'sdxl,sd15']).sections).toEqual(['sd15', 'sdxl']);
    expect(parseBenchOptions(['--only', 'sd15']).sections).toEqual(['sd15']);
    expect(parseBenchOptions(['--only', 'sd15,pipeline']).sections).toEqual(['pipeline', 'sd15']);
  });

  it('--edge alone runs only the edge-path section; with --only it adds it to the named ones', () => {
    expect(parseBenchOptions(['--edge']).sections).toEqual(['edge-path']);
    expect(parseBenchOptions(['--edge', '--only', 'throughput']).sections).toEqual(['throughput', 'edge-path']);
    expect(parseBenchOptions(['--edge', '--only', 'edge']).sections).toEqual(['edge', 'edge-path']);
    expect(parseBenchOptions(['--only', 'edge-path']).sections).toEqual(['edge-path']);
  });

  it('refuses an unknown or empty --only list, naming the sections', () => {
    expect(() => parseBenchOptions(['--only', 'sd15,sdxxl'])).toThrow(/--only takes a comma-separated list of pipeline, throughput, ort, edge, sd15, sdxl, flux, gguf, edge-path, throughput-sd15; got "sd15,sdxxl"/);
    expect(() => parseBenchOptions(['--only', ','])).toThrow(/--only takes/);
  });

  it('--quick measures the same sd15 figures with fewer timed repeats and a shorter image', () => {
    const full = benchSizes(false).sd15;
    const quick = benchSizes(true).sd15;
    expect([quick.unetSize, quick.largeSize]).toEqual([full.unetSize, full.largeSize]);
    expect(quick.unetRepeats).toBeLessThan(full.unetRepeats);
    expect(quick.image.steps * quick.image.repeats).toBeLessThan(full.image.steps * full.image.repeats);
    expect(quick.image.steps).toBeGreaterThanOrEqual(3);
  });
});
