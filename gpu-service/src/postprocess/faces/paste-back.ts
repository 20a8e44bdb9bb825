/**
 * Paste a restored face back into the image through the inverse of its alignment transform, with a feathered
 * mask (facexlib/utils/face_restoration_helper.py, `paste_faces_to_input_image`).
 *
 * facexlib warps an all-ones mask back, erodes it, and blurs it with a Gaussian whose size is w_edge·2 + 1 with
 * w_edge = ⌊√(face area)⌋ / 20, so the feather spans about a tenth of the face's side. We use the same width with
 * a documented linear ramp instead of the blur, so the weights are known in closed form: for an image pixel p
 * whose point in the crop is q = M·p (crop of side S),
 *
 *   d(q) = min(q_x + 0.5, S − 0.5 − q_x, q_y + 0.5, S − 0.5 − q_y)      (distance to the crop's edge, crop pixels)
 *   m(p) = clamp(d(q) / (FEATHER_FRACTION · S), 0, 1)                     (0 outside the crop)
 *   out(p) = round(m · restored(q) + (1 − m) · original(p))                (restored read bilinearly at q)
 *
 * so pixels deeper than a tenth of the crop's side inside the face are the restored face, pixels outside the crop
 * are the original, and the weight rises linearly in between.
 */
import { applyAffine, invertAffine, type Affine } from './align';

/** The feather's width as a fraction of the crop's side (facexlib: 2·(√area / 20) / side = 1/10). */
export const FEATHER_FRACTION = 0.1;

/** The paste-back weight of a crop point q (see the module comment); 0 outside the crop. */
export function featherWeight(qx: number, qy: number, size: number): number {
  if (qx <= -0.5 || qy <= -0.5 || qx >= size - 0.5 || qy >= size - 0.5) return 0;
  const d = Math.min(qx + 0.5, size - 0.5 - qx, qy + 0.5, size - 0.5 - qy);
  return Math.min(1, d / (FEATHER_FRACTION * size));
}

/**
 * Blend `restored` into `rgb` in place.
 * @param rgb the image, interleaved RGB bytes, width × height.
 * @param restored the restored crop, interleaved RGB floats in 0..255, size × size.
 * @param toCrop the alignment transform image → crop.
 * @returns how many image pixels got a non-zero weight.
 */
export function pasteFace(rgb: Uint8Array, width: number, height: number, restored: Float32Array, size: number, toCrop: Affine): number {
  const toImage = invertAffine(toCrop);
  const corners = [applyAffine(toImage, -1, -1), applyAffine(toImage, size, -1), applyAffine(toImage, -1, size), applyAffine(toImage, size, size)];
  const x0 = Math.max(0, Math.floor(Math.min(...corners.map((c) => c[0]))));
  const x1 = Math.min(width - 1, Math.ceil(Math.max(...corners.map((c) => c[0]))));
  const y0 = Math.max(0, Math.floor(Math.min(...corners.map((c) => c[1]))));
  const y1 = Math.min(height - 1, Math.ceil(Math.max(...corners.map((c) => c[1]))));
  const read = (c: number, x: number, y: number): number => restored[(Math.min(size - 1, Math.max(0, y)) * size + Math.min(size - 1, Math.max(0, x))) * 3 + c];
  let touched = 0;
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const [qx, qy] = applyAffine(toCrop, x, y);
      const m = featherWeight(qx, qy, size);
      if (m === 0) continue;
      touched++;
      const fx0 = Math.floor(qx), fy0 = Math.floor(qy);
      const fx = qx - fx0, fy = qy - fy0;
      for (let c = 0; c < 3; c++) {
        const top = read(c, fx0, fy0) * (1 - fx) + read(c, fx0 + 1, fy0) * fx;
        const bottom = read(c, fx0, fy0 + 1) * (1 - fx) + read(c, fx0 + 1, fy0 + 1) * fx;
        const v = top * (1 - fy) + bottom * fy;
        const i = (y * width + x) * 3 + c;
        rgb[i] = Math.round(Math.min(255, Math.max(0, m * v + (1 - m) * rgb[i])));
      }
    }
  }
  return touched;
}
