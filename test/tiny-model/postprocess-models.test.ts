/**
 * The post-processing test stand-ins compute what their docstrings say: the matting model's alpha is
 * clamp(g + b − r, 0, 255) / 255 of each pixel (fed with the matting default normalisation rgb / 255 − 0.5), the
 * upscaler is ×4 nearest neighbour; the files are byte-identical from run to run.
 */
import { describe, expect, it } from 'vitest';
import { OnnxModel } from '../../gpu-service/src/onnx/session';
import { buildPostprocessStandIns, testMattingAlpha, TEST_MATTING_MODEL, TEST_UPSCALER_MODEL } from '../../scripts/tiny-model/postprocess-models';
import { TEST_FACE_DETECTOR_MODEL, TEST_FACE_RESTORER_MODEL } from '../../scripts/tiny-model/face-models';

const files = buildPostprocessStandIns();
const open = (rel: string) => OnnxModel.open(rel, { executionProviders: ['cpu'] }, { model: files.get(rel)! });

describe('post-processing stand-ins', () => {
  it('are deterministic and named as test models', () => {
    const again = buildPostprocessStandIns();
    expect([...files.keys()]).toEqual([
      `matting/${TEST_MATTING_MODEL}.onnx`,
      `upscale_models/${TEST_UPSCALER_MODEL}.onnx`,
      `facerestore/${TEST_FACE_DETECTOR_MODEL}.onnx`,
      `facerestore/${TEST_FACE_RESTORER_MODEL}.onnx`,
    ]);
    for (const [rel, bytes] of files) {
      expect(Buffer.from(again.get(rel)!).equals(Buffer.from(bytes)), rel).toBe(true);
      expect(rel.split('/')[1].startsWith('test-')).toBe(true);
    }
  });

  it('matting: alpha = clamp(g + b − r) / 255 for every pixel of a 5×3 image', async () => {
    const model = await open(`matting/${TEST_MATTING_MODEL}.onnx`);
    const pixels = [
      [255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0],
      [128, 128, 128], [200, 100, 50], [10, 20, 30], [90, 200, 10], [255, 128, 127],
      [1, 2, 3], [254, 0, 255], [60, 60, 0], [33, 0, 33], [100, 101, 0],
    ];
    const w = 5;
    const h = 3;
    const input = new Float32Array(3 * w * h);
    pixels.forEach((p, i) => p.forEach((v, c) => (input[c * w * h + i] = v / 255 - 0.5)));
    const out = await model.run({ [model.inputs[0].name]: { data: input, dims: [1, 3, h, w] } });
    const alpha = out[model.outputs[0].name];
    expect(alpha.dims).toEqual([1, 1, h, w]);
    pixels.forEach(([r, g, b], i) => expect(Math.round(alpha.data[i] * 255), `pixel ${i}`).toBe(testMattingAlpha(r, g, b)));
    expect(testMattingAlpha(255, 0, 0)).toBe(0);
    expect(testMattingAlpha(128, 128, 128)).toBe(128);
    await model.release();
  });

  it('upscaler: output [1, 3, 4h, 4w], each pixel a 4×4 block', async () => {
    const model = await open(`upscale_models/${TEST_UPSCALER_MODEL}.onnx`);
    const w = 3;
    const h = 2;
    const input = Float32Array.from({ length: 3 * w * h }, (_, i) => i / 17);
    const out = (await model.run({ input: { data: input, dims: [1, 3, h, w] } })).output;
    expect(out.dims).toEqual([1, 3, 4 * h, 4 * w]);
    for (let c = 0; c < 3; c++) for (let y = 0; y < 4 * h; y++) for (let x = 0; x < 4 * w; x++) {
      expect(out.data[c * 16 * w * h + y * 4 * w + x]).toBe(input[c * w * h + Math.floor(y / 4) * w + Math.floor(x / 4)]);
    }
    await model.release();
  });
});
