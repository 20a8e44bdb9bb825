/**
 * Tiny synthetic face-restoration models (kind `facerestore`, MODELS_DIR/facerestore/) with the interfaces of
 * gpu-service/src/postprocess/faces/ and outputs known in closed form, so tests check the face stage pixel by
 * pixel (README "Post-processing", "Restore faces"). They are TEST MODELS: their names start with `test-`, and
 * they show nothing about real face detection or restoration. Built with the engine's ONNX graph builder
 * (gpu-service/src/graphs/onnx-graph.ts); deterministic, no weights downloaded.
 *
 * - `facerestore/test-face-detector-magenta.onnx` (role detector, by its name): input `input` float
 *   [1, 3, height, width] = rgb / 255 (fed at the image's size); output `detections` float [1, 1, 15]: the
 *   bounding box of the pure magenta (255, 0, 255) pixels — x1, y1 = the first such column / row, x2, y2 = the
 *   last + 1 — score 1 when there is one (0 otherwise, so the stage finds no face), and the 5 landmarks placed
 *   where facexlib's 512 template puts them in a box of that size: (x1 + w·tₓ / 512, y1 + h·t_y / 512). So a
 *   drawn magenta square of side L aligns to the restorer's 512 crop by a pure scale 512 / L and shift.
 *   Magenta test: m = clip(100·(r + g·(−2) + b) − 199, 0, 1) on rgb / 255 (1 only for pure magenta among 8-bit
 *   colours; (255, 0, 254) gives 0.6 and counts in the bounding box, as does any m > 0).
 * - `facerestore/test-face-restorer-invert.onnx` (role restorer): CodeFormer-style, input `input` float
 *   [1, 3, 512, 512] in [−1, 1] and `w` float [1]; output `output` = input · (2w − 1). So w = 0 inverts the
 *   colours (rgb → 255 − rgb), w = 1 gives the crop back, w = 0.5 grey 127.5.
 */
import { DataType, OnnxGraph } from '../../gpu-service/src/graphs/onnx-graph';

export const TEST_FACE_DETECTOR_MODEL = 'test-face-detector-magenta';
export const TEST_FACE_RESTORER_MODEL = 'test-face-restorer-invert';

/** facexlib's 512 template (duplicated from the engine on purpose: the stand-in is built independently of it). */
const TEMPLATE_512 = [
  [192.98138, 239.94708],
  [318.90277, 240.1936],
  [256.63416, 314.01935],
  [201.26117, 371.41043],
  [313.08905, 371.15118],
];

/** The detector stand-in's graph (see the module comment). */
export function buildTestFaceDetectorGraph(): OnnxGraph {
  const g = new OnnxGraph('test_face_detector_magenta');
  const input = g.floatInput('input', [1, 3, 'height', 'width']);
  const raw = g.node('Conv', [input, g.floatConstant('magenta_weight', [1, 3, 1, 1], [100, -200, 100]), g.floatConstant('magenta_bias', [1], [-199])], { kernel_shape: [1, 1] });
  const mask = g.node('Clip', [raw, g.floatConstant('zero', [], [0]), g.floatConstant('one', [], [1])]);
  const cols = g.node('ReduceMax', [mask], { axes: [2], keepdims: 1 }); // [1, 1, 1, W]
  const rows = g.node('ReduceMax', [mask], { axes: [3], keepdims: 1 }); // [1, 1, H, 1]
  const present = (m: string, axis: number): [string, string] => {
    // Coordinates 0..n−1 along the axis: CumSum of ones − 1.
    const bin = g.node('Ceil', [m]); // 1 where any magenta weight > 0
    const ones = g.node('Add', [g.node('Mul', [bin, g.floatConstant('zero', [], [0])]), g.floatConstant('one', [], [1])]);
    const axisTensor = g.int64Constant('axis', [], [axis]);
    const coord = g.node('Sub', [g.node('CumSum', [ones, axisTensor]), g.floatConstant('one', [], [1])]);
    const far = g.node('Mul', [g.node('Sub', [g.floatConstant('one', [], [1]), bin]), g.floatConstant('big', [], [1e6])]);
    const lo = g.node('ReduceMin', [g.node('Add', [coord, far])], { axes: [axis], keepdims: 0 });
    const hi = g.node('Add', [g.node('ReduceMax', [g.node('Mul', [coord, bin])], { axes: [axis], keepdims: 0 }), g.floatConstant('one', [], [1])]);
    return [lo, hi];
  };
  const to11 = (v: string): string => g.node('Reshape', [v, g.ints('shape11', [1, 1])]);
  const [x1, x2] = present(cols, 3).map(to11);
  const [y1, y2] = present(rows, 2).map(to11);
  const score = to11(g.node('ReduceMax', [mask], { keepdims: 0 }));
  const w = g.node('Sub', [x2, x1]);
  const h = g.node('Sub', [y2, y1]);
  const lmx = g.node('Add', [x1, g.node('Mul', [w, g.floatConstant('template_x', [1, 5], TEMPLATE_512.map((p) => p[0] / 512))])]); // [1, 5]
  const lmy = g.node('Add', [y1, g.node('Mul', [h, g.floatConstant('template_y', [1, 5], TEMPLATE_512.map((p) => p[1] / 512))])]);
  const pairs = g.node('Concat', [g.node('Reshape', [lmx, g.ints('shape51', [5, 1])]), g.node('Reshape', [lmy, g.ints('shape51', [5, 1])])], { axis: 1 }); // [5, 2]
  const landmarks = g.node('Reshape', [pairs, g.ints('shape110', [1, 10])]);
  const row = g.node('Concat', [x1, y1, x2, y2, score, landmarks], { axis: 1 }); // [1, 15]
  g.output('detections', g.node('Reshape', [row, g.ints('shape1115', [1, 1, 15])]), DataType.FLOAT, [1, 1, 15]);
  return g;
}

/** The restorer stand-in's graph (see the module comment). */
export function buildTestFaceRestorerGraph(size = 512): OnnxGraph {
  const g = new OnnxGraph('test_face_restorer_invert');
  const input = g.floatInput('input', [1, 3, size, size]);
  const w = g.floatInput('w', [1]);
  const gain = g.node('Sub', [g.node('Mul', [w, g.floatConstant('two', [], [2])]), g.floatConstant('one', [], [1])]);
  g.output('output', g.node('Mul', [input, gain]), DataType.FLOAT, [1, 3, size, size]);
  return g;
}

/** The face stand-ins: path relative to MODELS_DIR → bytes. Pure and deterministic. */
export function buildFaceStandIns(): Map<string, Uint8Array> {
  return new Map([
    [`facerestore/${TEST_FACE_DETECTOR_MODEL}.onnx`, buildTestFaceDetectorGraph().toBytes()],
    [`facerestore/${TEST_FACE_RESTORER_MODEL}.onnx`, buildTestFaceRestorerGraph().toBytes()],
  ]);
}
