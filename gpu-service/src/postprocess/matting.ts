/**
 * Transparent background: a matting model's alpha composited into the decoded image (the interface of
 * postprocess-interfaces.ts, kind `matting`).
 *
 * Steps (briaai/RMBG-1.4 `preprocess_image` / `postprocess_image`, BiRefNet's inference script):
 * 1. normalise (rgb / 255 − mean) / std and resize to the network's size (bilinear, half-pixel centres:
 *    torch F.interpolate(mode='bilinear', align_corners=False)) — the sidecar's `input_size`, else the graph's
 *    static input dims, else the image's own size;
 * 2. run; the output is one alpha plane [1, 1, H', W'] (or [1, H', W']);
 * 3. sigmoid when the sidecar says the output is logits; resize back to the image's size (bilinear); clamp to
 *    [0, 1]; alpha byte = round(255 · a).
 * The RGB values are left as they are (straight, not premultiplied alpha, as PNG and WebP store it).
 */
import type { OnnxModel } from '../onnx/session';
import { resizeLatents } from '../diffusion/pipelines/resize-latents';
import { rgbToNchw, type StageImage } from './image-tensor';
import { DEFAULT_NORMALISATION, type PostprocessSidecar } from './postprocess-interfaces';

/** The [width, height] a matting network is fed at for an image of `width` × `height` (see step 1). */
export function mattingInputSize(session: Pick<OnnxModel, 'inputs'>, sidecar: PostprocessSidecar, width: number, height: number): [number, number] {
  if (sidecar.input_size) return sidecar.input_size;
  const info = sidecar.input ? session.inputs.find((i) => i.name === sidecar.input) : session.inputs[0];
  const dims = info?.shape ?? [];
  const h = dims[2];
  const w = dims[3];
  if (typeof h === 'number' && typeof w === 'number' && h > 0 && w > 0) return [w, h];
  return [width, height];
}

/**
 * The alpha of an image from a matting network.
 * @param rgb interleaved RGB bytes, width × height.
 * @returns width × height alpha bytes (255 = foreground).
 * @throws Error when the graph lacks the named input/output or its output is not [1, 1, H', W'] / [1, H', W'].
 */
export async function mattingAlpha(session: OnnxModel, sidecar: PostprocessSidecar, rgb: Uint8Array, width: number, height: number): Promise<Uint8Array> {
  const { mean, std } = { ...DEFAULT_NORMALISATION.matting, ...(sidecar.mean ? { mean: sidecar.mean } : {}), ...(sidecar.std ? { std: sidecar.std } : {}) };
  const inputName = sidecar.input ?? session.inputs[0]?.name;
  const outputName = sidecar.output ?? session.outputs[0]?.name;
  if (!inputName || !session.inputs.some((i) => i.name === inputName)) throw new Error(`${session.path}: no graph input "${inputName}"`);
  if (!outputName || !session.outputs.some((o) => o.name === outputName)) throw new Error(`${session.path}: no graph output "${outputName}"`);
  const [nw, nh] = mattingInputSize(session, sidecar, width, height);
  let x = rgbToNchw(rgb, width, height, mean, std);
  if (nw !== width || nh !== height) x = resizeLatents(x, 1, 3, height, width, nh, nw, 'bilinear');
  const out = (await session.run({ [inputName]: { data: x, dims: [1, 3, nh, nw] } }, [outputName]))[outputName];
  const dims = out.dims;
  const oh = dims[dims.length - 2];
  const ow = dims[dims.length - 1];
  const lead = dims.slice(0, -2).reduce((a, b) => a * b, 1);
  if (dims.length < 3 || dims.length > 4 || lead !== 1 || out.data.length !== oh * ow) {
    throw new Error(`${session.path}: the matting output "${outputName}" has dims [${dims.join(', ')}], not [1, 1, H, W]`);
  }
  let a: Float32Array = out.data;
  if (sidecar.activation === 'sigmoid') a = a.map((v) => 1 / (1 + Math.exp(-v)));
  if (oh !== height || ow !== width) a = resizeLatents(a, 1, 1, oh, ow, height, width, 'bilinear');
  const alpha = new Uint8Array(width * height);
  for (let p = 0; p < alpha.length; p++) alpha[p] = Math.round(Math.min(1, Math.max(0, a[p])) * 255);
  return alpha;
}

/** The image with the matting network's alpha (its RGB shared, unchanged). */
export async function removeBackground(session: OnnxModel, sidecar: PostprocessSidecar, image: StageImage): Promise<StageImage> {
  return { ...image, alpha: await mattingAlpha(session, sidecar, image.rgb, image.width, image.height) };
}
