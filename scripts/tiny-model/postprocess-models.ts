/**
 * Tiny synthetic post-processing models with the default interfaces of their kinds
 * (gpu-service/src/postprocess/postprocess-interfaces.ts) and outputs known in closed form, so tests check the
 * post-processing stages pixel by pixel (README "Post-processing", "Test stand-ins"). They are TEST MODELS:
 * their names start with `test-`, and they show nothing about real matting or upscaling quality.
 * Built with the checkpoint engine's ONNX graph builder (gpu-service/src/graphs/onnx-graph.ts); deterministic
 * (same bytes every time), no weights downloaded.
 *
 * - `matting/test-matting-gbr.onnx`: input `input` float [1, 3, height, width] (symbolic: fed at the image's
 *   size) normalised as the matting default, x = rgb / 255 − 0.5; output `output` float [1, 1, height, width]
 *   = clip(x_g + x_b − x_r + 0.5, 0, 1). So the alpha of an 8-bit pixel (r, g, b) is exactly
 *   clamp(g + b − r, 0, 255) / 255: red is transparent, green, blue and white opaque, grey 128 half.
 *   {@link testMattingAlpha} is that function.
 * - `upscale_models/test-upscale-x4-nearest.onnx`: input `input` float [1, 3, h, w] → output `output` float
 *   [1, 3, 4h, 4w], Resize ×4 nearest: each pixel becomes a 4×4 block, whatever the tile it is run in.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DataType, OnnxGraph } from '../../gpu-service/src/graphs/onnx-graph';
import { buildFaceStandIns } from './face-models';

/** Ids (relative paths under MODELS_DIR without `.onnx`) of the stand-ins, by kind. */
export const TEST_MATTING_MODEL = 'test-matting-gbr';
export const TEST_UPSCALER_MODEL = 'test-upscale-x4-nearest';
/** The stand-in upscaler's scale. */
export const TEST_UPSCALER_SCALE = 4;

/** The stand-in matting model's alpha (0..255) of an 8-bit pixel: clamp(g + b − r, 0, 255). */
export function testMattingAlpha(r: number, g: number, b: number): number {
  return Math.min(255, Math.max(0, g + b - r));
}

/** The matting stand-in's graph (see the module comment). */
export function buildTestMattingGraph(): OnnxGraph {
  const g = new OnnxGraph('test_matting_gbr');
  const input = g.floatInput('input', [1, 3, 'height', 'width']);
  // A 1×1 convolution: alpha = −x_r + x_g + x_b + 0.5.
  const weight = g.floatConstant('alpha_weight', [1, 3, 1, 1], [-1, 1, 1]);
  const bias = g.floatConstant('alpha_bias', [1], [0.5]);
  const raw = g.node('Conv', [input, weight, bias], { kernel_shape: [1, 1] });
  const alpha = g.node('Clip', [raw, g.floatConstant('zero', [], [0]), g.floatConstant('one', [], [1])]);
  g.output('output', alpha, DataType.FLOAT, [1, 1, 'height', 'width']);
  return g;
}

/** The ×4 nearest-neighbour upscaler stand-in's graph (see the module comment). */
export function buildTestUpscalerGraph(scale = TEST_UPSCALER_SCALE): OnnxGraph {
  const g = new OnnxGraph(`test_upscale_x${scale}_nearest`);
  const input = g.floatInput('input', [1, 3, 'height', 'width']);
  const scales = g.floatConstant('scales', [4], [1, 1, scale, scale]);
  const up = g.node('Resize', [input, '', scales], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' });
  g.output('output', up, DataType.FLOAT, [1, 3, 'out_height', 'out_width']);
  return g;
}

/** Every stand-in file (the face ones from face-models.ts): path relative to MODELS_DIR ('/'-separated) → bytes. Pure and deterministic. */
export function buildPostprocessStandIns(): Map<string, Uint8Array> {
  return new Map([
    [`matting/${TEST_MATTING_MODEL}.onnx`, buildTestMattingGraph().toBytes()],
    [`upscale_models/${TEST_UPSCALER_MODEL}.onnx`, buildTestUpscalerGraph().toBytes()],
    ...buildFaceStandIns(),
  ]);
}

/**
 * Write the stand-ins into `modelsDir` (each file written beside itself under a temporary name and renamed, so a
 * crash never leaves a half-written model; other files of those folders are left alone).
 * @returns the paths written, relative to modelsDir.
 * @throws Error on file-system failures.
 */
export async function generatePostprocessStandIns(modelsDir: string): Promise<string[]> {
  const written: string[] = [];
  for (const [rel, bytes] of buildPostprocessStandIns()) {
    const target = path.join(modelsDir, ...rel.split('/'));
    await mkdir(path.dirname(target), { recursive: true });
    const tmp = path.join(path.dirname(target), `.${path.basename(target)}.tmp-${process.pid}`);
    try {
      await writeFile(tmp, bytes);
      await rename(tmp, target);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    written.push(rel);
  }
  return written;
}
