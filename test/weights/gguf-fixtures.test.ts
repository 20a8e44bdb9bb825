/**
 * The GGUF reader on the fixtures' files against upstream:
 * - sd15-tiny UNet in stable-diffusion.cpp's layout (F16, Q8_0, Q4_0): the F16 file's tensors equal the single
 *   file's bit for bit, the quantized files keep F16 where stable-diffusion.cpp does and their dequantized weights
 *   move exactly as far as gguf-py's did; the UNet graph built from each file's tensors by the ordinary builder
 *   matches the sd15.unet.gguf_* references (diffusers UNet on gguf-py-dequantized weights).
 * - FLUX.1-schnell transformer in city96's layout (Q8_0, Q4_0): the tensor types are the cases' `tensor_types`,
 *   F32/F16 tensors equal the bf16 safetensors file's values, quantized ones lie within one quantization step of
 *   them. (No per-tensor reference exists; the transformer graph is built elsewhere.)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectUnetConfig } from '../../gpu-service/src/checkpoints/detect/unet-config';
import type { AttentionKind } from '../../gpu-service/src/graphs/layers';
import { buildUnetGraph, UNET_IO } from '../../gpu-service/src/graphs/unet';
import { OnnxModel } from '../../gpu-service/src/onnx/session';
import { halfToFloatTable } from '../../gpu-service/src/weights/decode';
import { openGguf, type GgufFile } from '../../gpu-service/src/weights/gguf';
import { openSafetensors } from '../../gpu-service/src/weights/safetensors';
import type { TensorFile } from '../../gpu-service/src/weights/tensor-file';
import { WeightSet } from '../../gpu-service/src/weights/weight-set';
import { expectWithinTolerance, fixtureDir, hasFixture, normwiseRelError, openFixtureFamily, type FixtureFamily } from '../helpers/checkpoint-fixtures';

const opened: TensorFile[] = [];
let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'gguf-fixtures-'));
});
afterAll(async () => {
  await Promise.all(opened.map((f) => f.close()));
  await rm(tmp, { recursive: true, force: true });
});

async function gguf(p: string): Promise<GgufFile> {
  const f = await openGguf(p);
  opened.push(f);
  return f;
}

async function safetensors(p: string): Promise<TensorFile> {
  const f = await openSafetensors(p);
  opened.push(f);
  return f;
}

function typeCounts(f: GgufFile): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const e of f.entries.values()) counts[e.dtype] = (counts[e.dtype] ?? 0) + 1;
  return counts;
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.every((v, i) => v === y[i]);
}

const worst: Record<string, string> = {};
afterAll(() => {
  if (Object.keys(worst).length) console.log('GGUF fixture errors:', worst);
});

describe.skipIf(!hasFixture('checkpoints'))('sd15-tiny UNet GGUF (stable-diffusion.cpp layout)', () => {
  const PREFIX = 'model.diffusion_model.';
  const QUANTS = [
    { quant: 'F16', file: 'sd15-tiny-unet-f16.gguf', cases: ['sd15.unet.gguf_f16.sq', 'sd15.unet.gguf_f16.nonsq'], attention: 'contrib' as AttentionKind },
    { quant: 'Q8_0', file: 'sd15-tiny-unet-q8_0.gguf', cases: ['sd15.unet.gguf_q8_0.sq', 'sd15.unet.gguf_q8_0.nonsq'], attention: 'standard' as AttentionKind },
    { quant: 'Q4_0', file: 'sd15-tiny-unet-q4_0.gguf', cases: ['sd15.unet.gguf_q4_0.sq', 'sd15.unet.gguf_q4_0.nonsq'], attention: 'contrib' as AttentionKind },
  ];
  let family: FixtureFamily;
  beforeAll(async () => {
    family = await openFixtureFamily('checkpoints/sd15-tiny');
    opened.push(family.reference);
  });
  const ggufPath = (name: string) => path.join(fixtureDir('checkpoints/sd15-tiny'), 'gguf', name);

  it('the F16 file holds the single file’s UNet tensors bit for bit, under the same names and shapes', async () => {
    const g = await gguf(ggufPath('sd15-tiny-unet-f16.gguf'));
    const single = await safetensors(path.join(family.dir, 'sd15-tiny.safetensors'));
    const unetKeys = [...single.entries.keys()].filter((k) => k.startsWith(PREFIX)).sort();
    expect([...g.entries.keys()].sort()).toEqual(unetKeys);
    expect(g.metadata['general.architecture']).toBe('sd1');
    for (const key of unetKeys) {
      const e = g.entries.get(key)!;
      expect(e.shape, key).toEqual(single.entries.get(key)!.shape);
      expect(e.dtype, key).toBe('F16');
      expect(sameBits(await g.readFloat32(key), await single.readFloat32(key)), key).toBe(true);
    }
  });

  for (const q of QUANTS.slice(1)) {
    it(`${q.quant}: stable-diffusion.cpp's type choice, F16 tensors unchanged, dequantized weights moved as far as gguf-py's`, async () => {
      const g = await gguf(ggufPath(q.file));
      const f16 = await gguf(ggufPath('sd15-tiny-unet-f16.gguf'));
      const facts = (family.json.gguf as Record<string, { tensor_types: Record<string, number>; max_abs_weight_change_vs_f16: number }>)[q.quant];
      expect(typeCounts(g)).toEqual(facts.tensor_types);
      let maxChange = 0;
      for (const e of g.entries.values()) {
        // stable-diffusion.cpp quantizes rows of whole blocks, never biases, time_embed or embeddings.
        const eligible = e.ne[0] % 32 === 0 && !e.key.endsWith('.bias') && !e.key.includes('time_embed.') && !e.key.includes('embedding');
        expect(e.dtype, e.key).toBe(eligible ? q.quant : 'F16');
        expect(e.shape, e.key).toEqual(f16.entries.get(e.key)!.shape);
        const [a, b] = [await g.readFloat32(e.key), await f16.readFloat32(e.key)];
        if (e.dtype === 'F16') expect(sameBits(a, b), e.key).toBe(true);
        for (let i = 0; i < a.length; i++) maxChange = Math.max(maxChange, Math.abs(a[i] - b[i]));
      }
      // cases.json records the largest |gguf-py dequantized − F16| weight (to 9 digits): the same number comes out here.
      expect(Math.abs(maxChange - facts.max_abs_weight_change_vs_f16)).toBeLessThanOrEqual(1e-8 * facts.max_abs_weight_change_vs_f16);
      expect(maxChange).toBeGreaterThan(0);
    });
  }

  for (const q of QUANTS) {
    it(`${q.quant}: the UNet built from the file's tensors matches ${q.cases.join(' and ')} (${q.attention} attention)`, async () => {
      const g = await gguf(ggufPath(q.file));
      const ldm = (family.json.configs as Record<string, Record<string, unknown>>).unet_ldm_equivalent;
      const weights = WeightSet.fromFile(g, PREFIX);
      const config = detectUnetConfig(weights, { attentionHeads: { heads: ldm.num_heads as number }, groupNormGroups: ldm.norm_num_groups as number });
      expect(config.contextDim).toBe(ldm.context_dim);
      const { modelPath } = await buildUnetGraph(config, weights, { attention: q.attention }).save(path.join(tmp, q.quant));
      const model = await OnnxModel.open(modelPath);
      try {
        for (const id of q.cases) {
          const fc = family.case(id);
          const feed = async (name: string) => {
            const t = await family.tensor(name);
            return { data: t.data, dims: t.shape };
          };
          const out = (
            await model.run(
              {
                [UNET_IO.sample]: await feed(fc.inputs.sample),
                [UNET_IO.timestep]: await feed(fc.inputs.timestep),
                [UNET_IO.encoderHiddenStates]: await feed(fc.inputs.encoder_hidden_states),
              },
              [UNET_IO.outSample],
            )
          )[UNET_IO.outSample];
          const expected = await family.tensor(fc.outputs.out);
          expect(out.dims).toEqual(expected.shape);
          worst[id] = `${normwiseRelError(out.data, expected.data).toExponential(2)} rel (limit ${fc.tolerance.rel})`;
          expectWithinTolerance(id, out.data, expected.data, fc.tolerance.rel);
        }
      } finally {
        await model.release();
      }
    });
  }
});

describe.skipIf(!hasFixture('checkpoints-dit'))('FLUX.1-schnell transformer GGUF (city96 layout)', () => {
  const dir = () => fixtureDir('checkpoints-dit/flux-schnell');

  for (const quant of ['Q8_0', 'Q4_0'] as const) {
    it(`${quant}: the cases' tensor types; F32/F16 tensors equal the bf16 file's values, ${quant} ones lie within one quantization step`, async () => {
      const family = await openFixtureFamily('checkpoints-dit/flux-schnell');
      opened.push(family.reference);
      const fc = family.json.cases.find((c) => c.id === `flux.transformer.square.gguf_${quant}`)!;
      const tensorTypes = fc.tensor_types as Record<string, string>;
      const g = await gguf(path.join(dir(), `flux1-schnell-tiny-${quant}.gguf`));
      const bf16 = await safetensors(path.join(dir(), 'flux1-schnell-tiny.safetensors'));
      expect(g.metadata['general.architecture']).toBe('flux');
      expect([...g.entries.keys()].sort()).toEqual([...bf16.entries.keys()].sort());
      expect(Object.fromEntries([...g.entries.values()].map((e) => [e.key, e.dtype]))).toEqual(tensorTypes);

      const table = halfToFloatTable();
      let worstStep = 0;
      let quantized = 0;
      for (const e of g.entries.values()) {
        expect(e.shape, e.key).toEqual(bf16.entries.get(e.key)!.shape);
        const [a, ref] = [await g.readFloat32(e.key), await bf16.readFloat32(e.key)];
        if (!e.ggmlType.quantized) {
          expect(sameBits(a, ref), `${e.key} (${e.dtype})`).toBe(true);
          continue;
        }
        quantized++;
        // Each block of 32 values starts with its float16 scale d: the step between neighbouring quants.
        const raw = await g.readStored(e.key);
        const { blockSize, typeSize } = e.ggmlType;
        for (let b = 0; b < a.length / blockSize; b++) {
          const d = Math.abs(table[raw[b * typeSize] | (raw[b * typeSize + 1] << 8)]);
          for (let j = 0; j < blockSize; j++) {
            const i = b * blockSize + j;
            const err = Math.abs(a[i] - ref[i]);
            if (err > d) expect.fail(`${e.key}[${i}]: |${a[i]} − ${ref[i]}| exceeds the block's step ${d}`);
            if (d > 0) worstStep = Math.max(worstStep, err / d);
          }
        }
      }
      expect(quantized).toBe(Object.values(tensorTypes).filter((t) => t === quant).length);
      // Q8_0 rounds to the nearest of ±127 steps: about half a step off. Q4_0's quants −8..7 reach the largest
      // magnitude on one side only, so the other side's extreme clips to 7 steps: up to a whole step off.
      expect(worstStep).toBeGreaterThan(quant === 'Q8_0' ? 0.4 : 0.9);
      worst[`flux ${quant}`] = `worst |dequantized − bf16| = ${worstStep.toPrecision(6)} of the block step`;
    });
  }
});
