/**
 * Run a GFPGAN / CodeFormer-style restorer ONNX model (kind `facerestore`, role `restorer`) on one aligned crop.
 *
 * Supported interface (GFPGAN v1.x and CodeFormer ONNX exports):
 * - input: the sidecar's `input`, else the first graph input that is not the fidelity input; float
 *   [1, 3, S, S], RGB, x = (rgb / 255 − mean) / std, default mean = std = (0.5, 0.5, 0.5), i.e. [−1, 1]
 *   (GFPGAN `img2tensor` + `normalize(0.5, 0.5)`). S: the sidecar's `input_size` (square), else the graph's static
 *   dims, else 512 (GFPGAN's and CodeFormer's size).
 * - fidelity (CodeFormer only): the sidecar's `fidelity_input`, else a graph input named `w`; a float or double
 *   scalar (dims [] or [1]) fed the job's `face_restore_fidelity` in [0, 1] (CodeFormer's `w`: 0 = strongest
 *   restoration, 1 = closest to the input; default 0.5 as CodeFormer's inference script). A restorer without it
 *   (GFPGAN) ignores the field.
 * - output: the sidecar's `output`, else the first graph output; float [1, 3, S, S] in the input's normalisation
 *   (undone: v = y·std + mean, clamped to [0, 1]; GFPGAN `tensor2img(min_max=(−1, 1))`).
 */
import type { OnnxModel } from '../../onnx/session';
import type { PostprocessSidecar } from '../postprocess-interfaces';
import { faceSettings } from './face-settings';

/** GFPGAN's and CodeFormer's crop size. */
export const DEFAULT_RESTORER_SIZE = 512;
/** CodeFormer's default fidelity `w`. */
export const DEFAULT_FIDELITY = 0.5;

/** The restorer's input names: the image and, when it has one, the fidelity scalar. */
export function restorerInputs(session: Pick<OnnxModel, 'inputs' | 'path'>, sidecar: PostprocessSidecar): { image: string; fidelity?: string } {
  const settings = faceSettings(sidecar);
  const fidelity = settings.fidelity_input ?? (session.inputs.some((i) => i.name === 'w') ? 'w' : undefined);
  if (fidelity !== undefined && !session.inputs.some((i) => i.name === fidelity)) throw new Error(`${session.path}: no graph input "${fidelity}" (fidelity_input)`);
  const image = sidecar.input ?? session.inputs.find((i) => i.name !== fidelity)?.name;
  if (!image || !session.inputs.some((i) => i.name === image)) throw new Error(`${session.path}: no graph input "${image}"`);
  return { image, fidelity };
}

/** The crop side S the restorer takes (see the module comment). @throws Error for a non-square sidecar size. */
export function restorerSize(session: Pick<OnnxModel, 'inputs'>, sidecar: PostprocessSidecar, imageInput: string): number {
  if (sidecar.input_size) {
    if (sidecar.input_size[0] !== sidecar.input_size[1]) throw new Error(`input_size: a restorer's crop is square, got [${sidecar.input_size.join(', ')}]`);
    return sidecar.input_size[0];
  }
  const shape = session.inputs.find((i) => i.name === imageInput)?.shape ?? [];
  const h = shape[2];
  const w = shape[3];
  if (typeof h === 'number' && typeof w === 'number' && h > 0 && h === w) return h;
  return DEFAULT_RESTORER_SIZE;
}

/**
 * Restore one crop.
 * @param crop planar RGB floats in 0..255, [3, size, size].
 * @param fidelity in [0, 1], fed to the fidelity input when the restorer has one.
 * @returns planar RGB floats in 0..255, [3, size, size].
 * @throws Error when the output is not [1, 3, size, size].
 */
export async function restoreCrop(session: OnnxModel, sidecar: PostprocessSidecar, crop: Float32Array, size: number, fidelity: number): Promise<Float32Array> {
  const { image, fidelity: fidelityName } = restorerInputs(session, sidecar);
  const outputName = sidecar.output ?? session.outputs[0]?.name;
  if (!outputName || !session.outputs.some((o) => o.name === outputName)) throw new Error(`${session.path}: no graph output "${outputName}"`);
  const mean = sidecar.mean ?? [0.5, 0.5, 0.5];
  const std = sidecar.std ?? [0.5, 0.5, 0.5];
  const n = size * size;
  const x = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) for (let p = 0; p < n; p++) x[c * n + p] = (crop[c * n + p] / 255 - mean[c]) / std[c];
  const feeds: Parameters<OnnxModel['run']>[0] = { [image]: { data: x, dims: [1, 3, size, size] } };
  if (fidelityName) {
    const rank = session.inputs.find((i) => i.name === fidelityName)?.shape.length ?? 0;
    feeds[fidelityName] = { data: [fidelity], dims: rank === 0 ? [] : [1] };
  }
  const out = (await session.run(feeds, [outputName]))[outputName];
  if (out.data.length !== 3 * n || out.dims.slice(-3).join(',') !== `3,${size},${size}`) {
    throw new Error(`${session.path}: the restorer output "${outputName}" has dims [${out.dims.join(', ')}], not [1, 3, ${size}, ${size}]`);
  }
  const y = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) for (let p = 0; p < n; p++) y[c * n + p] = Math.min(1, Math.max(0, out.data[c * n + p] * std[c] + mean[c])) * 255;
  return y;
}
