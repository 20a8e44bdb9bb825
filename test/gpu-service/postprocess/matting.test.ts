/**
 * The matting stage's interface rules on small graphs: the network size (sidecar input_size, else static graph dims,
 * else the image's own size), the bilinear resize there and back (a flat image keeps its exact alpha through it),
 * the sigmoid for logit outputs, the default normalisation, and a bad output shape refused with its dims.
 */
import { describe, expect, it } from 'vitest';
import { OnnxModel } from '../../../gpu-service/src/onnx/session';
import { DataType, OnnxGraph } from '../../../gpu-service/src/graphs/onnx-graph';
import { mattingAlpha, mattingInputSize } from '../../../gpu-service/src/postprocess/matting';
import { parseSidecar } from '../../../gpu-service/src/postprocess/postprocess-interfaces';
import { buildTestMattingGraph, testMattingAlpha } from '../../../scripts/tiny-model/postprocess-models';

const open = (g: OnnxGraph) => OnnxModel.open(`${g.name}.onnx`, { executionProviders: ['cpu'] }, { model: g.toBytes() });

/** alpha = x_g + x_b − x_r + 0.5 (no clip) at a static 32×24 input, output [1, 1, 16, 12] (half size, nearest). */
function staticGraph(): OnnxGraph {
  const g = new OnnxGraph('static_matting');
  const input = g.floatInput('image', [1, 3, 24, 32]);
  const a = g.node('Conv', [input, g.floatConstant('w', [1, 3, 1, 1], [-1, 1, 1]), g.floatConstant('b', [1], [0.5])], { kernel_shape: [1, 1] });
  const half = g.node('Resize', [a, '', g.floatConstant('s', [4], [1, 1, 0.5, 0.5])], { mode: 'nearest' });
  g.output('mask', half, DataType.FLOAT, [1, 1, 12, 16]);
  return g;
}

const flat = (width: number, height: number, rgb: [number, number, number]) => {
  const out = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) out.set(rgb, p * 3);
  return out;
};

describe('matting stage', () => {
  it('network size: sidecar input_size, else the static dims, else the image', async () => {
    const dynamic = await open(buildTestMattingGraph());
    const fixed = await open(staticGraph());
    expect(mattingInputSize(dynamic, {}, 40, 30)).toEqual([40, 30]);
    expect(mattingInputSize(fixed, {}, 40, 30)).toEqual([32, 24]);
    expect(mattingInputSize(dynamic, { input_size: [64, 48] }, 40, 30)).toEqual([64, 48]);
    await dynamic.release();
    await fixed.release();
  });

  it('a flat image keeps its exact alpha through the resize to a static 32×24 network and back', async () => {
    const session = await open(staticGraph());
    for (const colour of [[200, 100, 50], [10, 120, 40], [128, 128, 128]] as Array<[number, number, number]>) {
      const alpha = await mattingAlpha(session, {}, flat(40, 30, colour), 40, 30);
      expect(alpha.length).toBe(1200);
      expect(new Set(alpha), JSON.stringify(colour)).toEqual(new Set([testMattingAlpha(...colour)]));
    }
    await session.release();
  });

  it('sigmoid for logit outputs; mean / std from the sidecar', async () => {
    const session = await open(buildTestMattingGraph());
    const rgb = flat(4, 2, [60, 90, 20]);
    // Logits: with mean 0 and std 1 the graph outputs clip(g + b − r + 0.5) / 255 units: (90 + 20 − 60)/255 + 0.5.
    const sidecar = parseSidecar('matting', { mean: [0, 0, 0], std: [1, 1, 1], activation: 'sigmoid' });
    const logit = Math.min(1, Math.max(0, (90 + 20 - 60) / 255 + 0.5));
    const alpha = await mattingAlpha(session, sidecar, rgb, 4, 2);
    expect([...alpha]).toEqual(Array(8).fill(Math.round(255 / (1 + Math.exp(-logit)))));
    expect(() => parseSidecar('matting', { activation: 'softmax' })).toThrow(/activation/);
    expect(() => parseSidecar('matting', { scale: 4 })).toThrow(/scale|Unrecognized/);
    await session.release();
  });

  it('refuses an output that is not one alpha plane, naming its dims', async () => {
    const g = new OnnxGraph('rgb_out');
    const input = g.floatInput('input', [1, 3, 'h', 'w']);
    g.output('output', g.node('Identity', [input]), DataType.FLOAT, [1, 3, 'h', 'w']);
    const session = await open(g);
    await expect(mattingAlpha(session, {}, flat(4, 4, [1, 2, 3]), 4, 4)).rejects.toThrow(/dims \[1, 3, 4, 4\]/);
    await session.release();
  });
});
