/**
 * Face alignment as facexlib's FaceRestoreHelper does it for GFPGAN and CodeFormer
 * (facexlib/utils/face_restoration_helper.py, `align_warp_face` / `paste_faces_to_input_image`):
 * the 5 detected landmarks (left eye, right eye, nose, left mouth corner, right mouth corner) are mapped onto
 * the FFHQ template by a similarity transform (rotation + uniform scale + translation; facexlib uses
 * cv2.estimateAffinePartial2D), the face is warped to the restorer's square input with that transform, and the
 * restored face is warped back with its inverse.
 *
 * Coordinates are pixel-centre based as in OpenCV: pixel (x, y) is the point (x, y); an affine M = [a, b, tx;
 * c, d, ty] maps a source point p to M·[p; 1].
 */

/** A 2-D point [x, y] in pixels. */
export type Point = readonly [number, number];

/** A 2 × 3 affine matrix, row-major [a, b, tx, c, d, ty]. */
export type Affine = readonly [number, number, number, number, number, number];

/**
 * facexlib's 5-point FFHQ face template for a 512 × 512 crop (face_restoration_helper.py, `self.face_template`):
 * left eye, right eye, nose tip, left and right mouth corners. For other sizes it is scaled by size / 512.
 */
export const FACE_TEMPLATE_512: readonly Point[] = [
  [192.98138, 239.94708],
  [318.90277, 240.1936],
  [256.63416, 314.01935],
  [201.26117, 371.41043],
  [313.08905, 371.15118],
];

/** The template for a square crop of `size` pixels (FACE_TEMPLATE_512 · size / 512). */
export function faceTemplate(size: number): Point[] {
  return FACE_TEMPLATE_512.map(([x, y]) => [(x * size) / 512, (y * size) / 512]);
}

/**
 * The least-squares similarity transform taking `src` points onto `dst` (Umeyama 1991, without reflection): the
 * transform cv2.estimateAffinePartial2D fits (it adds LMEDS outlier rejection, which changes nothing for exact or
 * 5-point inlier sets). M = [s·cos θ, −s·sin θ, tx; s·sin θ, s·cos θ, ty].
 * @throws Error when fewer than 2 points or all src points coincide.
 */
export function estimateSimilarity(src: readonly Point[], dst: readonly Point[]): Affine {
  const n = src.length;
  if (n < 2 || dst.length !== n) throw new Error(`a similarity transform needs 2 or more point pairs, got ${n} and ${dst.length}`);
  let sx = 0, sy = 0, dx = 0, dy = 0;
  for (let i = 0; i < n; i++) {
    sx += src[i][0]; sy += src[i][1]; dx += dst[i][0]; dy += dst[i][1];
  }
  sx /= n; sy /= n; dx /= n; dy /= n;
  // a = s·cos θ, b = s·sin θ minimise Σ |R·(p − p̄) − (q − q̄)|².
  let num_a = 0, num_b = 0, den = 0;
  for (let i = 0; i < n; i++) {
    const px = src[i][0] - sx, py = src[i][1] - sy;
    const qx = dst[i][0] - dx, qy = dst[i][1] - dy;
    num_a += px * qx + py * qy;
    num_b += px * qy - py * qx;
    den += px * px + py * py;
  }
  if (den === 0) throw new Error('the source landmarks all coincide');
  const a = num_a / den, b = num_b / den;
  return [a, -b, dx - (a * sx - b * sy), b, a, dy - (b * sx + a * sy)];
}

/** The inverse of an affine transform (cv2.invertAffineTransform). @throws Error when it is singular. */
export function invertAffine(m: Affine): Affine {
  const [a, b, tx, c, d, ty] = m;
  const det = a * d - b * c;
  if (det === 0) throw new Error('the affine transform is singular');
  const ia = d / det, ib = -b / det, ic = -c / det, id = a / det;
  return [ia, ib, -(ia * tx + ib * ty), ic, id, -(ic * tx + id * ty)];
}

/** M·[p; 1]. */
export function applyAffine(m: Affine, x: number, y: number): [number, number] {
  return [m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5]];
}

/**
 * Warp planar float channels with `m` (source → destination), bilinear, as cv2.warpAffine(INTER_LINEAR) samples:
 * each destination pixel q reads the source at M⁻¹·q. Samples outside the source read `border` (facexlib warps
 * the crop with BORDER_CONSTANT (135, 133, 132) in BGR; the paste-back mask zeroes what lies outside anyway).
 * @param src channels × srcH × srcW floats (planar).
 * @param border one value per channel.
 * @returns channels × dstH × dstW floats.
 */
export function warpAffine(src: Float32Array, channels: number, srcW: number, srcH: number, m: Affine, dstW: number, dstH: number, border: readonly number[]): Float32Array {
  const inv = invertAffine(m);
  const out = new Float32Array(channels * dstW * dstH);
  const plane = srcW * srcH;
  const at = (c: number, x: number, y: number): number => (x < 0 || y < 0 || x >= srcW || y >= srcH ? border[c] : src[c * plane + y * srcW + x]);
  for (let y = 0; y < dstH; y++) {
    for (let x = 0; x < dstW; x++) {
      const [u, v] = applyAffine(inv, x, y);
      const x0 = Math.floor(u), y0 = Math.floor(v);
      const fx = u - x0, fy = v - y0;
      for (let c = 0; c < channels; c++) {
        const top = at(c, x0, y0) * (1 - fx) + at(c, x0 + 1, y0) * fx;
        const bottom = at(c, x0, y0 + 1) * (1 - fx) + at(c, x0 + 1, y0 + 1) * fx;
        out[c * dstW * dstH + y * dstW + x] = top * (1 - fy) + bottom * fy;
      }
    }
  }
  return out;
}
