/**
 * Tiled upscaling with the ×4 nearest-neighbour stand-in: the tiled result equals the untiled one and the ×4
 * nearest enlargement exactly, whatever the tile size and overlap (seams blended away); with a test-only upscaler
 * that looks at neighbours (3×3 box blur, then ×4 nearest): tiled with an overlap whose margin covers its radius
 * it equals the untiled run, tiled with overlap 0 it shows the seams (so the check can fail); tile layout; the hires
 * target (several passes, then Lanczos to the exact size); an output that is not an integer enlargement fails.
 */
import { describe, expect, it } from 'vitest';
import { OnnxModel } from '../../../gpu-service/src/onnx/session';
import { upscaleTiled, tileStarts } from '../../../gpu-service/src/postprocess/upscale-tiles';
import { upscaleToTarget } from '../../../gpu-service/src/postprocess/hires-upscale';
import { DataType, OnnxGraph } from '../../../gpu-service/src/graphs/onnx-graph';
import { buildTestUpscalerGraph } from '../../../scripts/tiny-model/postprocess-models';

const open = (g: OnnxGraph) => OnnxModel.open(`${g.name}.onnx`, { executionProviders: ['cpu'] }, { model: g.toBytes() });

/** A deterministic noisy RGB image (every pixel different in some channel). */
function noise(width: number, height: number): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  let s = 12345;
  for (let i = 0; i < rgb.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    rgb[i] = s >>> 24;
  }
  return rgb;
}

function nearest(rgb: Uint8Array, width: number, height: number, k: number): Uint8Array {
  const out = new Uint8Array(width * k * height * k * 3);
  for (let y = 0; y < height * k; y++) for (let x = 0; x < width * k; x++) for (let c = 0; c < 3; c++) {
    out[(y * width * k + x) * 3 + c] = rgb[(Math.floor(y / k) * width + Math.floor(x / k)) * 3 + c];
  }
  return out;
}

/**
 * Test-only upscaler whose output depends on neighbours: a depthwise 3×3 box blur (zero padding, receptive radius
 * 1 input pixel) followed by ×4 nearest. [1, 3, h, w] float → [1, 3, 4h, 4w].
 */
function buildBlurUpscalerGraph(): OnnxGraph {
  const g = new OnnxGraph('test_upscale_blur3_x4');
  const input = g.floatInput('input', [1, 3, 'height', 'width']);
  const kernel = g.floatConstant('kernel', [3, 1, 3, 3], new Array(27).fill(1 / 9));
  const blurred = g.node('Conv', [input, kernel], { group: 3, kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
  const scales = g.floatConstant('scales', [4], [1, 1, 4, 4]);
  const up = g.node('Resize', [blurred, '', scales], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' });
  g.output('output', up, DataType.FLOAT, [1, 3, 'out_height', 'out_width']);
  return g;
}

/** Reference: 3×3 box blur with zero padding, rounded to bytes, then ×4 nearest (independent of ONNX). */
function blurThenNearest(rgb: Uint8Array, width: number, height: number): Uint8Array {
  const blurred = new Uint8Array(rgb.length);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) for (let c = 0; c < 3; c++) {
    let sum = 0;
    for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
      const yy = y + dy;
      const xx = x + dx;
      if (yy >= 0 && yy < height && xx >= 0 && xx < width) sum += rgb[(yy * width + xx) * 3 + c];
    }
    blurred[(y * width + x) * 3 + c] = Math.round(sum / 9);
  }
  return nearest(blurred, width, height, 4);
}

/** Largest absolute byte difference. */
function maxDiff(a: Uint8Array, b: Uint8Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('tileStarts', () => {
  it('covers the axis from 0 to the end with neighbours overlapping by at least the overlap (±1)', () => {
    expect(tileStarts(50, 64, 8)).toEqual([0]);
    expect(tileStarts(64, 64, 8)).toEqual([0]);
    for (const [length, tile, overlap] of [[100, 32, 8], [37, 16, 4], [1000, 192, 8], [65, 64, 8], [50, 16, 0]]) {
      const starts = tileStarts(length, tile, overlap);
      expect(starts[0]).toBe(0);
      expect(starts.at(-1)! + tile).toBe(length);
      for (let k = 1; k < starts.length; k++) expect(starts[k - 1] + tile - starts[k]).toBeGreaterThanOrEqual(overlap - 1);
    }
    expect(() => tileStarts(100, 16, 16)).toThrow(/overlap/);
  });
});

describe('upscaleTiled', () => {
  it('tiled ×4 nearest equals the untiled result and the exact ×4 nearest enlargement, pixel for pixel', async () => {
    const session = await open(buildTestUpscalerGraph());
    const width = 50;
    const height = 37;
    const rgb = noise(width, height);
    const expected = nearest(rgb, width, height, 4);
    const whole = await upscaleTiled(session, {}, { rgb, width, height }, { tileSize: 0, tileOverlap: 0 });
    expect([whole.width, whole.height, whole.scale]).toEqual([200, 148, 4]);
    expect(Buffer.from(whole.rgb).equals(Buffer.from(expected))).toBe(true);
    for (const tiles of [{ tileSize: 16, tileOverlap: 4 }, { tileSize: 24, tileOverlap: 8 }, { tileSize: 13, tileOverlap: 0 }, { tileSize: 192, tileOverlap: 8 }]) {
      const tiled = await upscaleTiled(session, {}, { rgb, width, height }, tiles);
      expect([tiled.width, tiled.height], JSON.stringify(tiles)).toEqual([200, 148]);
      const diff = tiled.rgb.findIndex((v, i) => v !== expected[i]);
      expect(diff, `${JSON.stringify(tiles)}: first differing byte`).toBe(-1);
    }
    await session.release();
  });

  it('a neighbour-dependent upscaler: tiled with overlap ≥ 4 (margin ≥ its radius) equals the untiled run; overlap 0 shows seams', async () => {
    const session = await open(buildBlurUpscalerGraph());
    const width = 50;
    const height = 37;
    const rgb = noise(width, height);
    const whole = await upscaleTiled(session, {}, { rgb, width, height }, { tileSize: 0, tileOverlap: 0 });
    expect([whole.width, whole.height, whole.scale]).toEqual([200, 148, 4]);
    // The untiled run is the blur + nearest itself (±1 for float rounding at a half step).
    expect(maxDiff(whole.rgb, blurThenNearest(rgb, width, height))).toBeLessThanOrEqual(1);
    for (const tiles of [{ tileSize: 16, tileOverlap: 4 }, { tileSize: 24, tileOverlap: 8 }, { tileSize: 20, tileOverlap: 6 }]) {
      const tiled = await upscaleTiled(session, {}, { rgb, width, height }, tiles);
      expect([tiled.width, tiled.height], JSON.stringify(tiles)).toEqual([200, 148]);
      expect(maxDiff(tiled.rgb, whole.rgb), JSON.stringify(tiles)).toBeLessThanOrEqual(1);
    }
    // Without overlap each tile's zero padding darkens its inner edges: the seams show, far beyond rounding.
    const seamed = await upscaleTiled(session, {}, { rgb, width, height }, { tileSize: 16, tileOverlap: 0 });
    expect(maxDiff(seamed.rgb, whole.rgb)).toBeGreaterThan(20);
    await session.release();
  });

  it('refuses an output that is no integer enlargement of its tile', async () => {
    const g = new OnnxGraph('odd_upscaler');
    const input = g.floatInput('input', [1, 3, 'h', 'w']);
    const sizes = g.ints('sizes', [1, 3, 10, 15]);
    g.output('output', g.node('Resize', [input, '', '', sizes], { mode: 'nearest' }), DataType.FLOAT, [1, 3, 10, 15]);
    const session = await open(g);
    const rgb = noise(8, 8);
    await expect(upscaleTiled(session, {}, { rgb, width: 8, height: 8 }, { tileSize: 0, tileOverlap: 0 })).rejects.toThrow(/integer scale/);
    await session.release();
  });
});

describe('upscaleToTarget (hires fix)', () => {
  it('applies the network until the target is reached, then resizes to it exactly', async () => {
    const session = await open(buildTestUpscalerGraph(2));
    const rgb = noise(16, 8);
    const upscaler = { id: 'x2', session, sidecar: {}, tiles: { tileSize: 12, tileOverlap: 4 } };
    // ×2 then ×2 reaches 64×32 exactly: no resampling, so the result is the ×4 nearest enlargement.
    const exact = await upscaleToTarget(upscaler, { rgb, width: 16, height: 8 }, 64, 32);
    expect([exact.width, exact.height]).toEqual([64, 32]);
    expect(Buffer.from(exact.rgb).equals(Buffer.from(nearest(rgb, 16, 8, 4)))).toBe(true);
    const odd = await upscaleToTarget(upscaler, { rgb, width: 16, height: 8 }, 40, 24);
    expect([odd.width, odd.height, odd.rgb.length]).toEqual([40, 24, 40 * 24 * 3]);
    await session.release();
  });
});
