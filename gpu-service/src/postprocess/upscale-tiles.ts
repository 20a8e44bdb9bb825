/**
 * ESRGAN-family upscaling in overlapping tiles (kind `upscaler`, postprocess-interfaces.ts), so an image of any
 * size fits in memory: AUTOMATIC1111's `ESRGAN_tile` / `ESRGAN_tile_overlap` scheme (modules/images.py
 * `split_grid` / `combine_grid`), with the seams blended by linear weights across each overlap.
 *
 * - Tiles are `tileSize` × `tileSize` input pixels (smaller at an image narrower than that), spread evenly so the
 *   first starts at 0, the last ends at the edge, and neighbours overlap by at least `tileOverlap` pixels (± 1 for
 *   rounding). `tileSize` 0 runs the whole image at once.
 * - Each tile's output is weighted per axis by a ramp across the part it shares with the tile before it (and,
 *   mirrored, the tile after it): weight 0 over the first m = ⌊tileOverlap / 4⌋ input pixels (m·s output pixels)
 *   of that shared part, a linear rise to 1 across its middle, and the mirrored ramp of the neighbour falls across
 *   the same pixels, so the two weights sum to 1 there (weight 1 elsewhere and at the image's edges). The result is
 *   the weighted mean of every tile covering a pixel. A tile's outputs next to an inner tile edge are wrong for a
 *   network that looks at neighbours (its padding stands in for the pixels beyond the edge); the margin m keeps
 *   them out of the result. So a network whose output pixel depends only on the input pixels within a radius
 *   r ≤ m of it (e.g. a 3×3 convolution, r = 1, with tileOverlap ≥ 4; r = 2, a 5×5 one, with the default 8) gives
 *   its untiled output up to float rounding, and one that maps each pixel on its own (the ×4 nearest stand-in)
 *   gives it exactly. Real ESRGAN-family networks see further; for them the ramp blends the seams away.
 * - The scale s is read from each tile's output shape ([1, 3, s·h, s·w]; the same integer on both axes and for
 *   every tile), never assumed.
 */
import type { OnnxModel } from '../onnx/session';
import { nchwToRgb, rgbToNchw, type StageImage } from './image-tensor';
import { DEFAULT_NORMALISATION, type PostprocessSidecar } from './postprocess-interfaces';

/** How an image is cut into tiles (input pixels). */
export interface TileOptions {
  /** Side of a tile; 0 = the whole image in one run. */
  tileSize: number;
  /** Pixels neighbouring tiles share (0 ≤ overlap < tileSize). */
  tileOverlap: number;
}

/** AUTOMATIC1111's defaults (ESRGAN_tile 192, ESRGAN_tile_overlap 8). */
export const DEFAULT_TILE_OPTIONS: TileOptions = { tileSize: 192, tileOverlap: 8 };

/**
 * Start offsets of the tiles along one axis of `length` pixels.
 * @throws Error when overlap is not within [0, tile).
 */
export function tileStarts(length: number, tile: number, overlap: number): number[] {
  if (tile <= 0 || length <= tile) return [0];
  if (overlap < 0 || overlap >= tile) throw new Error(`the tile overlap (${overlap}) must be at least 0 and less than the tile size (${tile})`);
  const n = Math.ceil((length - overlap) / (tile - overlap));
  return Array.from({ length: n }, (_, k) => Math.round((k * (length - tile)) / (n - 1)));
}

/**
 * Ramp weight at output offset `d` (pixel centre d + 0.5) into a shared part of `shared` output pixels whose first
 * `margin` pixels (and last `margin`, from the neighbour's side) are kept out: 0 before the margin, linear across
 * the middle, 1 beyond. ramp(d) + ramp(shared − 1 − d) = 1 inside the shared part.
 */
function ramp(d: number, shared: number, margin: number): number {
  const width = shared - 2 * margin;
  if (width <= 0) return d + 0.5 < shared / 2 ? 0 : d + 0.5 > shared / 2 ? 1 : 0.5;
  return Math.min(1, Math.max(0, (d + 0.5 - margin) / width));
}

/** Per-pixel weights along one axis of one tile's output (see the module comment); `margin` in input pixels. */
function axisWeights(starts: number[], k: number, tile: number, scale: number, margin: number): Float32Array {
  const len = tile * scale;
  const w = new Float32Array(len).fill(1);
  const before = k > 0 ? (starts[k - 1] + tile - starts[k]) * scale : 0;
  const after = k < starts.length - 1 ? (starts[k] + tile - starts[k + 1]) * scale : 0;
  const m = margin * scale;
  for (let i = 0; i < len; i++) {
    if (before > 0) w[i] *= ramp(i, before, m);
    if (after > 0) w[i] *= ramp(len - 1 - i, after, m);
  }
  return w;
}

/**
 * Upscale an image with an upscaler network, tile by tile.
 * @param image RGB bytes (an alpha channel, if any, is not carried over).
 * @param signal checked between tiles: aborting rejects with its reason.
 * @returns the upscaled image, s·width × s·height, and s.
 * @throws Error when the graph lacks the named input/output, or its output is not [1, 3, s·h, s·w] with one integer s.
 */
export async function upscaleTiled(
  session: OnnxModel,
  sidecar: PostprocessSidecar,
  image: StageImage,
  tiles: TileOptions = DEFAULT_TILE_OPTIONS,
  signal?: AbortSignal,
): Promise<StageImage & { scale: number }> {
  const { width, height, rgb } = image;
  const mean = sidecar.mean ?? DEFAULT_NORMALISATION.upscaler.mean;
  const std = sidecar.std ?? DEFAULT_NORMALISATION.upscaler.std;
  const inputName = sidecar.input ?? session.inputs[0]?.name;
  const outputName = sidecar.output ?? session.outputs[0]?.name;
  if (!inputName || !session.inputs.some((i) => i.name === inputName)) throw new Error(`${session.path}: no graph input "${inputName}"`);
  if (!outputName || !session.outputs.some((o) => o.name === outputName)) throw new Error(`${session.path}: no graph output "${outputName}"`);
  const tw = tiles.tileSize > 0 ? Math.min(tiles.tileSize, width) : width;
  const th = tiles.tileSize > 0 ? Math.min(tiles.tileSize, height) : height;
  const xs = tileStarts(width, tw, tiles.tileOverlap);
  const ys = tileStarts(height, th, tiles.tileOverlap);

  let scale = 0;
  let acc: Float32Array | undefined;
  let weight: Float32Array | undefined;
  const tileRgb = new Uint8Array(tw * th * 3);
  for (let ky = 0; ky < ys.length; ky++) {
    for (let kx = 0; kx < xs.length; kx++) {
      signal?.throwIfAborted();
      const x0 = xs[kx];
      const y0 = ys[ky];
      for (let y = 0; y < th; y++) tileRgb.set(rgb.subarray(((y0 + y) * width + x0) * 3, ((y0 + y) * width + x0 + tw) * 3), y * tw * 3);
      const out = (await session.run({ [inputName]: { data: rgbToNchw(tileRgb, tw, th, mean, std), dims: [1, 3, th, tw] } }, [outputName]))[outputName];
      const d = out.dims;
      const s = d[3] / tw;
      if (d.length !== 4 || d[0] !== 1 || d[1] !== 3 || !Number.isInteger(s) || s < 1 || d[2] !== s * th || (scale && s !== scale)) {
        throw new Error(`${session.path}: a ${tw}×${th} tile gave an output of dims [${d.join(', ')}], not [1, 3, s·${th}, s·${tw}] with one integer scale s${scale ? ` (${scale} so far)` : ''}`);
      }
      if (!scale) {
        scale = s;
        acc = new Float32Array(3 * width * s * height * s);
        weight = new Float32Array(width * s * height * s);
      }
      const W = width * s;
      const N = W * height * s;
      const margin = Math.floor(tiles.tileOverlap / 4);
      const wx = axisWeights(xs, kx, tw, s, margin);
      const wy = axisWeights(ys, ky, th, s, margin);
      const ow = tw * s;
      const oh = th * s;
      const plane = ow * oh;
      for (let y = 0; y < oh; y++) {
        const row = (y0 * s + y) * W + x0 * s;
        for (let x = 0; x < ow; x++) {
          const wgt = wy[y] * wx[x];
          const p = row + x;
          weight![p] += wgt;
          for (let c = 0; c < 3; c++) acc![c * N + p] += wgt * out.data[c * plane + y * ow + x];
        }
      }
    }
  }
  const W = width * scale;
  const H = height * scale;
  const N = W * H;
  for (let p = 0; p < N; p++) {
    const wgt = weight![p];
    for (let c = 0; c < 3; c++) acc![c * N + p] /= wgt;
  }
  return { rgb: nchwToRgb(acc!, W, H, mean, std), width: W, height: H, scale };
}
