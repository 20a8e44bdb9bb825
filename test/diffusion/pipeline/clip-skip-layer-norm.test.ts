/**
 * clip_skip on an export that carries CLIP's final LayerNorm: the earlier hidden state is normalised with
 * the export's own weights (diffusers / AUTOMATIC1111 behaviour), read from the ONNX initializers.
 */
import { mkdtemp, readFile, writeFile, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { layerNorm, readFinalLayerNorm } from '../../../gpu-service/src/diffusion/final-layer-norm';
import { encodePromptPair } from '../../../gpu-service/src/diffusion/text-conditioning';
import { loadDiffusionModel } from '../../../gpu-service/src/models/diffusion-model';
import { float32ToFloat16 } from '../../../gpu-service/src/onnx/float16';
import { tinyVariant } from '../../helpers/tiny-variants';

const { onnx } = onnxProto;

/** Copy the tiny model and add (unused) final LayerNorm initializers to its text encoder. */
async function tinyWithFinalNorm(weight: Float32Array, bias: Float32Array): Promise<string> {
  const base = await tinyVariant('tiny-analytic');
  const dir = join(await mkdtemp(join(tmpdir(), 'tiny-ln-')), 'tiny-ln');
  await cp(base.dir, dir, { recursive: true });
  const path = join(dir, 'text_encoder', 'model.onnx');
  const model = onnx.ModelProto.decode(await readFile(path));
  model.graph!.initializer!.push(
    onnx.TensorProto.create({ name: 'text_model.final_layer_norm.weight', dims: [weight.length], dataType: 1, rawData: new Uint8Array(weight.buffer) }),
    // float16 storage, as fp16 exports have it
    onnx.TensorProto.create({ name: 'text_model.final_layer_norm.bias', dims: [bias.length], dataType: 10, rawData: new Uint8Array(float32ToFloat16(bias).buffer) }),
  );
  await writeFile(path, onnx.ModelProto.encode(model).finish());
  return dir;
}

describe('clip_skip final LayerNorm', () => {
  it('layerNorm normalises each token over the hidden axis, then scales and shifts', () => {
    const x = new Float32Array([1, 2, 3, 4, 10, 10, 10, 10]);
    const y = layerNorm(x, 4, { weight: new Float32Array([1, 1, 2, 2]), bias: new Float32Array([0, 0, 0, 1]), eps: 1e-5 });
    const inv = 1 / Math.sqrt(1.25 + 1e-5);
    expect(Array.from(y.subarray(0, 4))).toEqual(Array.from(new Float32Array([-1.5 * inv, -0.5 * inv, 2 * 0.5 * inv, 2 * 1.5 * inv + 1])));
    expect(Array.from(y.subarray(4))).toEqual([0, 0, 0, 1]); // a constant token has zero variance
  });

  it('reads the weights from the export (float32 and float16) and applies them to hidden_states.(L−k+1)', async () => {
    const H = (await tinyVariant('tiny-analytic')).hiddenSize;
    const weight = Float32Array.from({ length: H }, (_, i) => 0.5 + i / H);
    const bias = Float32Array.from({ length: H }, (_, i) => (i % 3) * 0.25);
    const dir = await tinyWithFinalNorm(weight, bias);
    const read = await readFinalLayerNorm(join(dir, 'text_encoder', 'model.onnx'), H);
    expect(Array.from(read!.weight)).toEqual(Array.from(weight));
    expect(Array.from(read!.bias)).toEqual(Array.from(bias));

    const plain = await tinyVariant('tiny-analytic'); // same weights, no final-norm initializers
    const normed = await loadDiffusionModel(dir, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
    const raw = await encodePromptPair(plain, 'red apple', '', 2);
    const got = await encodePromptPair(normed, 'red apple', '', 2);
    expect(Array.from(got.cond.hidden)).toEqual(Array.from(layerNorm(raw.cond.hidden, H, read!)));
    // clip_skip 1 (the last layer) is left as the export gives it.
    const last = await encodePromptPair(normed, 'red apple', '', 1);
    expect(Array.from(last.cond.hidden)).toEqual(Array.from((await encodePromptPair(plain, 'red apple', '', 1)).cond.hidden));
    await normed.release();
  });
});
