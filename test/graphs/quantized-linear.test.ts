/**
 * GGUF Linear weights kept quantized (MatMulNBits, GGUF_KEEP_QUANTIZED): the re-packing reproduces ggml's
 * dequantized values bit for bit, a graph with MatMulNBits gives the dequantized float32 MatMul's output within
 * the float32 summation bound, only Q4_0 / Q8_0 2-D weights are kept, and the variable is validated.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Layers } from '../../gpu-service/src/graphs/layers';
import { DataType, OnnxGraph } from '../../gpu-service/src/graphs/onnx-graph';
import { keepQuantizedFromEnv, keptGgmlTypes, KEEP_QUANTIZED_AUTO } from '../../gpu-service/src/graphs/quantized-linear';
import { OnnxModel } from '../../gpu-service/src/onnx/session';
import { toFloat16Bits } from '../../gpu-service/src/onnx/float16';
import { dequantizeQ4_0, dequantizeQ8_0 } from '../../gpu-service/src/weights/ggml/dequantize';
import { ggmlToMatMulNBits } from '../../gpu-service/src/weights/ggml/matmul-nbits';
import { openGguf, type GgufFile } from '../../gpu-service/src/weights/gguf';
import { writeGguf } from '../../gpu-service/src/weights/gguf-writer';
import { WeightSet } from '../../gpu-service/src/weights/weight-set';
import { createMulberry32 } from '../../scripts/tiny-model/prng';

const { onnx } = onnxProto;
const N = 48;
const K = 256;
const rand = createMulberry32(15);

/** Random ggml blocks of `type` for [n, k]: scales from random halves in ±[2⁻⁸, 2⁻²], every quant value. */
function blocks(type: 'Q4_0' | 'Q8_0', n: number, k: number): Uint8Array {
  const size = type === 'Q4_0' ? 18 : 34;
  const out = new Uint8Array((n * k * size) / 32);
  for (let at = 0; at < out.length; at += size) {
    const d = (rand() < 0.5 ? -1 : 1) * 2 ** (-8 + 6 * rand());
    const h = toFloat16Bits(d);
    out[at] = h & 0xff;
    out[at + 1] = h >> 8;
    for (let j = 2; j < size; j++) out[at + j] = Math.floor(rand() * 256);
  }
  return out;
}

let dir: string;
let file: GgufFile;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'qlinear-'));
  const bias = Float32Array.from({ length: N }, () => rand() - 0.5);
  await writeGguf(path.join(dir, 'w.gguf'), [
    { name: 'q4.weight', type: 'Q4_0', shape: [N, K], data: () => blocks('Q4_0', N, K) },
    { name: 'q4.bias', type: 'F32', shape: [N], data: () => bias },
    { name: 'q8.weight', type: 'Q8_0', shape: [N, K], data: () => blocks('Q8_0', N, K) },
    { name: 'f16.weight', type: 'F16', shape: [N, K], data: () => Float32Array.from({ length: N * K }, () => rand() - 0.5) },
  ]);
  file = await openGguf(path.join(dir, 'w.gguf'));
});
afterAll(async () => {
  await file?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('ggml blocks as MatMulNBits inputs', () => {
  for (const [type, dequantize, zero] of [
    ['Q4_0', dequantizeQ4_0, 8],
    ['Q8_0', dequantizeQ8_0, 128],
  ] as const) {
    it(`${type}: (q − ${zero})·scale over the packed blocks equals ggml's dequantized values bit for bit`, async () => {
      const stored = await file.readStored(`${type.toLowerCase().slice(0, 2)}.weight`);
      const p = ggmlToMatMulNBits(type, stored, N, K);
      expect(p.b.length).toBe((N * K * p.bits) / 8);
      const expected = new Float32Array(N * K);
      dequantize(stored, expected);
      const got = new Float32Array(N * K);
      for (let n = 0; n < N; n++) {
        for (let k = 0; k < K; k++) {
          const i = n * K + k;
          const q = p.bits === 8 ? p.b[i] : (p.b[i >> 1] >> ((i & 1) * 4)) & 0x0f;
          got[i] = (q - zero) * p.scales[n * (K / 32) + (k >> 5)];
        }
      }
      expect(Buffer.from(got.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
    });
  }

  it('refuses types without an exact form and rows that are not whole blocks', () => {
    expect(() => ggmlToMatMulNBits('Q4_1', new Uint8Array(20), 1, 32)).toThrow(/Q4_1 has no exact MatMulNBits form/);
    expect(() => ggmlToMatMulNBits('Q8_0', new Uint8Array(34), 1, 48)).toThrow(/48 values is not a whole number of 32-value blocks/);
    expect(() => ggmlToMatMulNBits('Q8_0', new Uint8Array(33), 1, 32)).toThrow(/needs 34 bytes, got 33/);
  });
});

describe('Layers.linear with keepQuantized', () => {
  let count = 0;
  const T = 7;
  const x = Float32Array.from({ length: T * K }, () => 2 * rand() - 1);

  /** y = linear(x) for `prefix`, and the op types and initializer types of the saved graph. */
  async function run(prefix: string, keepQuantized: boolean | undefined) {
    const weights = WeightSet.fromFile(file);
    const g = new OnnxGraph('linear');
    const input = g.input('x', DataType.FLOAT, [1, T, K]);
    g.output('y', new Layers(g, weights, { keepQuantized }).linear(input, prefix), DataType.FLOAT, [1, T, N]);
    const { modelPath } = await g.save(path.join(dir, `g${count++}`));
    const proto = onnx.ModelProto.decode(await readFile(modelPath));
    const model = await OnnxModel.open(modelPath);
    try {
      const y = (await model.run({ x: { data: x, dims: [1, T, K] } }, ['y'])).y.data;
      return { y, ops: proto.graph!.node!.map((n) => n.opType), init: Object.fromEntries(proto.graph!.initializer!.map((t) => [t.name, t.dataType])) };
    } finally {
      await model.release();
    }
  }

  for (const prefix of ['q4', 'q8']) {
    it(`${prefix}: MatMulNBits over uint8 blocks matches the dequantized float32 MatMul within the float32 summation bound`, async () => {
      const kept = await run(prefix, true);
      const dequantized = await run(prefix, false);
      expect(kept.ops).toContain('MatMulNBits');
      expect(kept.ops).not.toContain('MatMul');
      expect(kept.init[`${prefix}.weight`]).toBe(DataType.UINT8);
      expect(dequantized.ops).toContain('MatMul');
      expect(dequantized.init[`${prefix}.weight`]).toBe(DataType.FLOAT);
      // Both are float32 sums of the same exact products x·w in another order: each is within
      // γ_K·Σ|x·w| (γ_K ≈ K·2⁻²⁴) of the exact sum, so they differ by at most twice that.
      const w = new Float32Array(N * K);
      (prefix === 'q4' ? dequantizeQ4_0 : dequantizeQ8_0)(await file.readStored(`${prefix}.weight`), w);
      let worst = 0;
      for (let t = 0; t < T; t++) {
        for (let n = 0; n < N; n++) {
          let abs = 0;
          for (let k = 0; k < K; k++) abs += Math.abs(x[t * K + k] * w[n * K + k]);
          const bound = 2 * K * 2 ** -24 * abs;
          const diff = Math.abs(kept.y[t * N + n] - dequantized.y[t * N + n]);
          worst = Math.max(worst, diff / bound);
        }
      }
      expect(worst).toBeLessThanOrEqual(1);
    });
  }

  it('GGUF_KEEP_QUANTIZED=auto (the default) keeps Q4_0 and dequantizes Q8_0', async () => {
    const saved = process.env.GGUF_KEEP_QUANTIZED;
    process.env.GGUF_KEEP_QUANTIZED = 'auto';
    try {
      expect((await run('q4', undefined)).ops).toContain('MatMulNBits');
      expect((await run('q8', undefined)).ops).not.toContain('MatMulNBits');
    } finally {
      if (saved === undefined) delete process.env.GGUF_KEEP_QUANTIZED;
      else process.env.GGUF_KEEP_QUANTIZED = saved;
    }
  });

  it('a float16 weight stays a float MatMul even when keeping quantized weights', async () => {
    const r = await run('f16', true);
    expect(r.ops).toContain('MatMul');
    expect(r.ops).not.toContain('MatMulNBits');
  });
});

describe('GGUF_KEEP_QUANTIZED', () => {
  it('0, 1 and auto (or unset) choose the kept types; anything else is refused naming the variable', () => {
    expect([...keepQuantizedFromEnv({ GGUF_KEEP_QUANTIZED: '0' })]).toEqual([]);
    expect([...keepQuantizedFromEnv({ GGUF_KEEP_QUANTIZED: '1' })].sort()).toEqual(['Q4_0', 'Q8_0']);
    expect([...keepQuantizedFromEnv({ GGUF_KEEP_QUANTIZED: 'auto' })]).toEqual(['Q4_0']);
    expect([...keepQuantizedFromEnv({})]).toEqual([...KEEP_QUANTIZED_AUTO]);
    // auto is the CPU (float32) measurement: float16 graphs dequantize under it, keep under 1.
    expect([...keptGgmlTypes(undefined, 'float32', { GGUF_KEEP_QUANTIZED: 'auto' })]).toEqual(['Q4_0']);
    expect([...keptGgmlTypes(undefined, 'float16', { GGUF_KEEP_QUANTIZED: 'auto' })]).toEqual([]);
    expect([...keptGgmlTypes(undefined, 'float16', { GGUF_KEEP_QUANTIZED: '1' })].sort()).toEqual(['Q4_0', 'Q8_0']);
    expect([...keptGgmlTypes(false, 'float32', { GGUF_KEEP_QUANTIZED: '1' })]).toEqual([]);
    expect(() => keepQuantizedFromEnv({ GGUF_KEEP_QUANTIZED: 'yes' })).toThrow(/GGUF_KEEP_QUANTIZED must be one of auto, 0, 1, got "yes"/);
  });
});
