/**
 * Run a face-detector ONNX model (kind `facerestore`, role `detector`) and return its faces after score
 * filtering and non-max suppression.
 *
 * Supported interface (a RetinaFace / SCRFD / YOLO-face export with its decoding included, i.e. the graph ends in
 * final detections, not raw anchor offsets):
 * - input: the sidecar's `input`, else the first graph input; float [1, 3, H, W], RGB, x = (rgb / 255 − mean) / std
 *   with the sidecar's mean / std, default mean (0, 0, 0), std (1, 1, 1) (rgb / 255, as YOLO exports take).
 *   H × W: the sidecar's `input_size` [width, height], else the graph's static dims, else the image's own size;
 *   the image is resized to it (bilinear, half-pixel centres) and the detections scaled back per axis.
 * - output: the sidecar's `output`, else the first graph output; float [1, N, 15] or [N, 15], one row per
 *   detection: x1, y1, x2, y2 (box, network-input pixels, x2/y2 exclusive), score, then the 5 landmarks
 *   (left eye, right eye, nose, left / right mouth corner) as x, y pairs — the layout of facexlib's
 *   RetinaFace `detect_faces` rows (box, score, landmarks).
 * - detections with score < `score_threshold` (default 0.5) are dropped, then NMS at IoU `nms_iou` (default 0.4,
 *   facexlib `detect_faces(nms_threshold=0.4)`).
 */
import type { OnnxModel } from '../../onnx/session';
import { resizeLatents } from '../../diffusion/pipelines/resize-latents';
import { rgbToNchw } from '../image-tensor';
import type { PostprocessSidecar } from '../postprocess-interfaces';
import type { Point } from './align';
import { faceSettings } from './face-settings';
import { nonMaxSuppression, type Box } from './nms';

/** One detected face, in image pixels. */
export interface DetectedFace {
  box: Box;
  score: number;
  /** Left eye, right eye, nose, left mouth corner, right mouth corner. */
  landmarks: Point[];
}

/** Values per detection row: 4 box + 1 score + 10 landmark coordinates. */
export const DETECTION_ROW = 15;

/** The [width, height] the detector is fed at (see the module comment). */
export function detectorInputSize(session: Pick<OnnxModel, 'inputs'>, sidecar: PostprocessSidecar, width: number, height: number): [number, number] {
  if (sidecar.input_size) return sidecar.input_size;
  const info = sidecar.input ? session.inputs.find((i) => i.name === sidecar.input) : session.inputs[0];
  const h = info?.shape[2];
  const w = info?.shape[3];
  if (typeof h === 'number' && typeof w === 'number' && h > 0 && w > 0) return [w, h];
  return [width, height];
}

/**
 * The faces in an image, best score first.
 * @param rgb interleaved RGB bytes, width × height.
 * @throws Error when the graph lacks the named input/output, its output is not [1, N, 15] / [N, 15], or the sidecar
 *         has a bad face setting.
 */
export async function detectFaces(session: OnnxModel, sidecar: PostprocessSidecar, rgb: Uint8Array, width: number, height: number): Promise<DetectedFace[]> {
  const settings = faceSettings(sidecar);
  const inputName = sidecar.input ?? session.inputs[0]?.name;
  const outputName = sidecar.output ?? session.outputs[0]?.name;
  if (!inputName || !session.inputs.some((i) => i.name === inputName)) throw new Error(`${session.path}: no graph input "${inputName}"`);
  if (!outputName || !session.outputs.some((o) => o.name === outputName)) throw new Error(`${session.path}: no graph output "${outputName}"`);
  const [nw, nh] = detectorInputSize(session, sidecar, width, height);
  let x = rgbToNchw(rgb, width, height, sidecar.mean ?? [0, 0, 0], sidecar.std ?? [1, 1, 1]);
  if (nw !== width || nh !== height) x = resizeLatents(x, 1, 3, height, width, nh, nw, 'bilinear');
  const out = (await session.run({ [inputName]: { data: x, dims: [1, 3, nh, nw] } }, [outputName]))[outputName];
  const d = out.dims;
  const ok = d[d.length - 1] === DETECTION_ROW && (d.length === 2 || (d.length === 3 && d[0] === 1));
  if (!ok) throw new Error(`${session.path}: the detector output "${outputName}" has dims [${d.join(', ')}], not [1, N, ${DETECTION_ROW}]`);
  const sx = width / nw;
  const sy = height / nh;
  const faces: DetectedFace[] = [];
  for (let r = 0; r * DETECTION_ROW < out.data.length; r++) {
    const row = out.data.subarray(r * DETECTION_ROW, (r + 1) * DETECTION_ROW);
    const score = row[4];
    if (!(score >= settings.score_threshold)) continue;
    const landmarks: Point[] = [];
    for (let k = 0; k < 5; k++) landmarks.push([row[5 + 2 * k] * sx, row[6 + 2 * k] * sy]);
    faces.push({ box: [row[0] * sx, row[1] * sy, row[2] * sx, row[3] * sy], score, landmarks });
  }
  const kept = nonMaxSuppression(faces.map((f) => f.box), faces.map((f) => f.score), settings.nms_iou);
  return kept.map((i) => faces[i]);
}
