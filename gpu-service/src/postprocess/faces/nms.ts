/**
 * Greedy non-maximum suppression of face boxes, as facexlib's RetinaFace `py_cpu_nms`
 * (facexlib/detection/retinaface_utils.py): boxes sorted by score, each kept box drops every later box whose
 * intersection-over-union with it exceeds the threshold. Box corners are continuous pixel coordinates
 * (x2, y2 exclusive), so areas are (x2 − x1)·(y2 − y1) (py_cpu_nms adds 1 for inclusive integer boxes).
 */

/** An axis-aligned box in image pixels: left, top, right, bottom (right/bottom exclusive). */
export type Box = readonly [number, number, number, number];

/** Intersection over union of two boxes (0 when either is empty). */
export function iou(a: Box, b: Box): number {
  const iw = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const ih = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = iw * ih;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * The indices of the boxes kept, best score first.
 * @param scores one per box.
 * @param threshold IoU above which the lower-scored box is dropped (facexlib default 0.4).
 */
export function nonMaxSuppression(boxes: readonly Box[], scores: readonly number[], threshold: number): number[] {
  const order = boxes.map((_, i) => i).sort((i, j) => scores[j] - scores[i] || i - j);
  const kept: number[] = [];
  for (const i of order) {
    if (kept.every((k) => iou(boxes[k], boxes[i]) <= threshold)) kept.push(i);
  }
  return kept;
}
