/**
 * `npm run bench -- --edge`: the edge section on the real local stack prints one JSON object with p50/p90 of
 * every column, the edge-added p50 and the per-phase breakdown from the edge's Server-Timing header; the
 * edge's image equals the GPU service's. No speed is asserted (figures live in the README). Plus the pure
 * helpers it uses: the Server-Timing parser and the percentile.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EDGE_PHASES, EDGE_TARGETS, percentile } from '../../scripts/bench/edge/edge-section';
import { parseServerTiming } from '../../scripts/bench/edge/server-timing-header';

const root = resolve(import.meta.dirname, '../..');

describe('bench edge section', () => {
  it('parses Server-Timing entries with dur and desc, ignoring what it does not know', () => {
    expect(parseServerTiming('auth;dur=1.5, db;dur=3.0;desc="2 calls", total;dur=12.3, cache;desc=hit, x;foo=1')).toEqual([
      { name: 'auth', durMs: 1.5 },
      { name: 'db', durMs: 3, desc: '2 calls' },
      { name: 'total', durMs: 12.3 },
      { name: 'cache', durMs: 0, desc: 'hit' },
      { name: 'x', durMs: 0 },
    ]);
    expect(parseServerTiming(null)).toEqual([]);
  });

  it('percentile is nearest-rank', () => {
    const values = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
    expect(percentile(values, 0.5)).toBe(5);
    expect(percentile(values, 0.9)).toBe(9);
    expect(percentile([7], 0.9)).toBe(7);
    expect(() => percentile([], 0.5)).toThrow(/no values/);
  });

  it('--edge --quick --json: one JSON object with every column, the edge-added p50 and the phases', () => {
    const run = spawnSync('npm', ['run', '-s', 'bench', '--', '--edge', '--quick', '--json'], { cwd: root, encoding: 'utf8', timeout: 230_000 });
    expect(run.status, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines, run.stdout).toHaveLength(1);
    const report = JSON.parse(lines[0]);
    expect(report.sections).toEqual(['edge-path']);
    expect(report.edge).toBeUndefined(); // the input-checks section did not run
    const edge = report.edge_path;
    expect(edge.job).toEqual({ model: 'tiny-analytic', width: 64, height: 64, steps: 1, response_format: 'b64_json' });
    expect(edge.image_matches_direct).toBe(true);
    expect(Object.keys(edge.latency).sort()).toEqual([...EDGE_TARGETS].sort());
    for (const figures of [...EDGE_TARGETS.map((t) => edge.latency[t]), edge.hop]) {
      expect(figures.p50_ms).toBeGreaterThan(0);
      expect(figures.p90_ms).toBeGreaterThanOrEqual(figures.p50_ms);
    }
    expect(edge.edge_added_p50_ms).toBeCloseTo(edge.latency.edge.p50_ms - edge.latency.direct.p50_ms, 1);
    expect(edge.edge_limited_added_p50_ms).toBeCloseTo(edge.latency.edge_limited.p50_ms - edge.latency.direct.p50_ms, 1);
    for (const column of ['edge', 'edge_limited']) {
      const phases = edge.phases[column];
      expect(Object.keys(phases).sort(), column).toEqual([...EDGE_PHASES, 'db_calls'].sort());
      // Every generation waits for at least its SUCCEED write.
      expect(phases.db_calls, column).toBeGreaterThanOrEqual(1);
      for (const phase of EDGE_PHASES) expect(Number.isFinite(phases[phase].p50_ms), `${column} ${phase}`).toBe(true);
    }
    // Only the limited key goes through the RateLimiter.
    expect(edge.phases.edge.ratelimit.mean_ms).toBe(0);
    expect(run.stderr).toContain('bench: edge: starting the local stack');
  }, 240_000);
});
