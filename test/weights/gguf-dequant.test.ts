/**
 * ggml block dequantization, every type the engine decodes, without a quantizer:
 * 1. blocks packed here from chosen integer quants and scales, following the block structs of ggml
 *    `ggml-common.h` field by field, decode to the formula of each type (a restatement of ggml-quants.c
 *    `dequantize_row_*`, float32 rounding after each operation as ggml's `float` arithmetic does);
 * 2. seeded random blocks decode bit for bit to what a numpy restatement of gguf-py's `dequantize_blocks`
 *    computed (gguf-dequant/expected.json, made by gguf-dequant/make_expected.py at authoring time);
 * 3. the same blocks written into a GGUF file come back through the reader.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toFloat16Bits, fromFloat16Bits } from '../../gpu-service/src/onnx/float16';
import { openGguf } from '../../gpu-service/src/weights/gguf';
import { writeGguf } from '../../gpu-service/src/weights/gguf-writer';
import { ggmlTypeByName, GGML_TYPES } from '../../gpu-service/src/weights/ggml/types';

const fr = Math.fround;

/** Deterministic integers (xorshift32), so every run builds the same blocks. */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
  return {
    /** integer in [lo, hi] */
    int: (lo: number, hi: number) => lo + (next() % (hi - lo + 1)),
    /** a float16-representable scale of either sign, magnitude ~1e-3..1e-1 */
    half: () => fromFloat16Bits(toFloat16Bits((next() % 2 ? -1 : 1) * (0.001 + (next() % 10000) / 100000))),
  };
}

function putHalf(b: Uint8Array, at: number, v: number) {
  const h = toFloat16Bits(v);
  b[at] = h & 0xff;
  b[at + 1] = h >> 8;
}

/** A type's block built from its parameters, and the values ggml's formula gives them. */
interface Built {
  bytes: Uint8Array;
  expected: Float32Array;
}

/** Q4_0 / Q4_1 / Q5_0 / Q5_1 / Q8_0: 32 values per block, one scale d (and a min m for the _1 types). */
function legacyBlock(type: string, r: ReturnType<typeof rng>): Built {
  const d = r.half();
  const m = r.half();
  const e = new Float32Array(32);
  if (type === 'Q8_0') {
    const b = new Uint8Array(34);
    putHalf(b, 0, d);
    for (let i = 0; i < 32; i++) {
      const q = r.int(-128, 127);
      b[2 + i] = q & 0xff;
      e[i] = fr(q * d);
    }
    return { bytes: b, expected: e };
  }
  const five = type.startsWith('Q5');
  const withMin = type.endsWith('_1');
  const b = new Uint8Array(type === 'Q4_0' ? 18 : type === 'Q4_1' ? 20 : type === 'Q5_0' ? 22 : 24);
  putHalf(b, 0, d);
  if (withMin) putHalf(b, 2, m);
  const qs = (withMin ? 4 : 2) + (five ? 4 : 0);
  const qh = withMin ? 4 : 2;
  let high = 0;
  for (let i = 0; i < 32; i++) {
    const q = r.int(0, five ? 31 : 15);
    // Element i < 16 is the low nibble of qs[i], element i ≥ 16 the high nibble of qs[i − 16]; Q5's 5th bit of
    // element i is bit i of the little-endian uint32 qh.
    b[qs + (i & 15)] |= (q & 15) << (i < 16 ? 0 : 4);
    if (five && q & 16) high |= 1 << i;
    const centred = withMin ? q : q - (five ? 16 : 8);
    e[i] = withMin ? fr(fr(q * d) + m) : fr(centred * d);
  }
  if (five) for (let k = 0; k < 4; k++) b[qh + k] = (high >>> (8 * k)) & 0xff;
  return { bytes: b, expected: e };
}

/** Q4_K / Q5_K's 12 scale bytes: 8 (scale, min) pairs of 6 bits (ggml-common.h block_q4_K comment layout). */
function packScalesK4(b: Uint8Array, at: number, sc: number[], mn: number[]) {
  for (let g = 0; g < 8; g++) {
    if (g < 4) {
      b[at + g] |= sc[g] & 63;
      b[at + g + 4] |= mn[g] & 63;
    } else {
      b[at + g + 4] = (sc[g] & 15) | ((mn[g] & 15) << 4);
      b[at + g - 4] |= (sc[g] >> 4) << 6;
      b[at + g] |= (mn[g] >> 4) << 6;
    }
  }
}

/** The K-quants: 256 values per super-block. */
function kBlock(type: string, r: ReturnType<typeof rng>): Built {
  const e = new Float32Array(256);
  const d = r.half();
  const dmin = r.half();
  switch (type) {
    case 'Q2_K': {
      // scales[16] (low nibble scale, high nibble min per 16 values) | qs[64] | d | dmin.
      const b = new Uint8Array(84);
      const sc = Array.from({ length: 16 }, () => r.int(0, 15));
      const mn = Array.from({ length: 16 }, () => r.int(0, 15));
      sc.forEach((s, g) => (b[g] = s | (mn[g] << 4)));
      putHalf(b, 80, d);
      putHalf(b, 82, dmin);
      for (let i = 0; i < 256; i++) {
        const q = r.int(0, 3);
        // 128-value halves n use qs[32n..32n+31]; within, 32-value quarter j is bit pair j, and its second 16
        // values use bytes 16..31 of the half.
        const n = i >> 7, j = (i >> 5) & 3, h = (i >> 4) & 1, l = i & 15;
        b[16 + 32 * n + 16 * h + l] |= q << (2 * j);
        const g = i >> 4;
        e[i] = fr(fr(fr(d * sc[g]) * q) - fr(dmin * mn[g]));
      }
      return { bytes: b, expected: e };
    }
    case 'Q3_K': {
      // hmask[32] | qs[64] | scales[12] (16 6-bit scales, stored + 32) | d. q = low 2 bits − 4 when the hmask bit is 0.
      const b = new Uint8Array(110);
      const sc = Array.from({ length: 16 }, () => r.int(-32, 31));
      sc.forEach((s, g) => {
        const u = s + 32;
        b[96 + (g & 7)] |= (u & 15) << (g < 8 ? 0 : 4);
        b[96 + 8 + (g & 3)] |= (u >> 4) << (2 * (g >> 2));
      });
      putHalf(b, 108, d);
      for (let i = 0; i < 256; i++) {
        const q = r.int(-4, 3);
        const n = i >> 7, j = (i >> 5) & 3, h = (i >> 4) & 1, l = i & 15;
        b[32 + 32 * n + 16 * h + l] |= (q & 3) << (2 * j);
        if (q >= 0) b[16 * h + l] |= 1 << (4 * n + j);
        e[i] = fr(fr(d * sc[i >> 4]) * q);
      }
      return { bytes: b, expected: e };
    }
    case 'Q4_K':
    case 'Q5_K': {
      // d | dmin | scales[12] | (Q5_K: qh[32]) | qs[128]; 8 groups of 32 values, each 64 values share 32 qs bytes
      // (low nibbles first); Q5_K's 5th bit of value l of group g is bit g of qh[l].
      const five = type === 'Q5_K';
      const b = new Uint8Array(five ? 176 : 144);
      putHalf(b, 0, d);
      putHalf(b, 2, dmin);
      const sc = Array.from({ length: 8 }, () => r.int(0, 63));
      const mn = Array.from({ length: 8 }, () => r.int(0, 63));
      packScalesK4(b, 4, sc, mn);
      const qs = five ? 48 : 16;
      for (let i = 0; i < 256; i++) {
        const q = r.int(0, five ? 31 : 15);
        const g = i >> 5, l = i & 31;
        b[qs + 32 * (g >> 1) + l] |= (q & 15) << (g & 1 ? 4 : 0);
        if (five && q & 16) b[16 + l] |= 1 << g;
        e[i] = fr(fr(fr(d * sc[g]) * q) - fr(dmin * mn[g]));
      }
      return { bytes: b, expected: e };
    }
    case 'Q6_K': {
      // ql[128] | qh[64] | int8 scales[16] | d; q stored + 32 in 6 bits: low 4 in ql, high 2 in qh.
      const b = new Uint8Array(210);
      const sc = Array.from({ length: 16 }, () => r.int(-128, 127));
      sc.forEach((s, g) => (b[192 + g] = s & 0xff));
      putHalf(b, 208, d);
      for (let i = 0; i < 256; i++) {
        const q = r.int(-32, 31);
        const u = q + 32;
        const n = i >> 7, k = (i >> 5) & 3, l = i & 31;
        b[64 * n + 32 * (k & 1) + l] |= (u & 15) << (k >= 2 ? 4 : 0);
        b[128 + 32 * n + l] |= (u >> 4) << (2 * k);
        e[i] = fr(fr(d * sc[i >> 4]) * q);
      }
      return { bytes: b, expected: e };
    }
    case 'Q8_K': {
      // float d | int8 qs[256] | int16 bsums[16] (sums of 16 quants, for dot products).
      const b = new Uint8Array(292);
      const view = new DataView(b.buffer);
      const df = fr(d * 0.37);
      view.setFloat32(0, df, true);
      for (let g = 0; g < 16; g++) {
        let sum = 0;
        for (let l = 0; l < 16; l++) {
          const q = r.int(-128, 127);
          b[4 + 16 * g + l] = q & 0xff;
          sum += q;
          e[16 * g + l] = fr(df * q);
        }
        view.setInt16(260 + 2 * g, sum, true);
      }
      return { bytes: b, expected: e };
    }
  }
  throw new Error(type);
}

const QUANT_TYPES = ['Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q8_0', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'Q8_K'];

/** Several blocks of one type, concatenated. */
function blocks(type: string, count: number, seed: number): Built {
  const r = rng(seed);
  const parts = Array.from({ length: count }, () => (type.endsWith('_K') ? kBlock(type, r) : legacyBlock(type, r)));
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.bytes.length, 0));
  const expected = new Float32Array(parts.reduce((n, p) => n + p.expected.length, 0));
  let b = 0;
  let v = 0;
  for (const p of parts) {
    bytes.set(p.bytes, b);
    expected.set(p.expected, v);
    b += p.bytes.length;
    v += p.expected.length;
  }
  return { bytes, expected };
}

function bitsOf(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

describe('ggml dequantization', () => {
  it('knows every block layout of ggml-common.h', () => {
    const sizes = Object.fromEntries([...GGML_TYPES.values()].map((t) => [t.name, [t.id, t.blockSize, t.typeSize]]));
    expect(sizes).toMatchObject({
      F32: [0, 1, 4], F16: [1, 1, 2], Q4_0: [2, 32, 18], Q4_1: [3, 32, 20], Q5_0: [6, 32, 22], Q5_1: [7, 32, 24], Q8_0: [8, 32, 34],
      Q2_K: [10, 256, 84], Q3_K: [11, 256, 110], Q4_K: [12, 256, 144], Q5_K: [13, 256, 176], Q6_K: [14, 256, 210], Q8_K: [15, 256, 292], BF16: [30, 1, 2],
    });
  });

  for (const type of QUANT_TYPES) {
    it(`${type}: hand-packed blocks decode to the type's formula, bit for bit`, () => {
      const t = ggmlTypeByName(type)!;
      const { bytes, expected } = blocks(type, 4, 1000 + t.id);
      expect(bytes.length).toBe(4 * t.typeSize);
      const out = new Float32Array(4 * t.blockSize);
      t.decode(bytes, out);
      const mismatch = Array.from(out).findIndex((v, i) => !Object.is(v, expected[i]));
      expect(mismatch, mismatch >= 0 ? `value ${mismatch}: ${out[mismatch]} vs ${expected[mismatch]}` : '').toBe(-1);
      // The formula is not vacuous: the block really spans its value range.
      expect(new Set(out).size).toBeGreaterThan(type.startsWith('Q2') ? 8 : 16);
    });
  }

  const reference = JSON.parse(readFileSync(path.join(__dirname, 'gguf-dequant', 'expected.json'), 'utf8')) as {
    cases: Array<{ type: string; bytes: string; values: number; expected_f32_bits: string }>;
  };

  it('covers every decoded type except F32 in the gguf-py cross-check', () => {
    expect(reference.cases.map((c) => c.type).sort()).toEqual([...GGML_TYPES.values()].filter((t) => t.quantized || t.name === 'F16' || t.name === 'BF16').map((t) => t.name).sort());
  });

  for (const c of reference.cases) {
    it(`${c.type}: random blocks decode bit for bit as gguf-py's dequantize does`, () => {
      const t = ggmlTypeByName(c.type)!;
      const bytes = Uint8Array.from(Buffer.from(c.bytes, 'hex'));
      const expected = new Uint32Array(Uint8Array.from(Buffer.from(c.expected_f32_bits, 'hex')).buffer);
      expect(expected.length).toBe(c.values);
      const out = new Float32Array(c.values);
      t.decode(bytes, out);
      const got = bitsOf(out);
      const mismatch = Array.from(got).findIndex((v, i) => v !== expected[i]);
      expect(mismatch, mismatch >= 0 ? `value ${mismatch}: ${out[mismatch]} vs ${new Float32Array(expected.buffer)[mismatch]}` : '').toBe(-1);
    });
  }

  describe('through a GGUF file', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'gguf-dequant-'));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('reads every type back as [rows, row length] tensors, dequantized and as stored bytes', async () => {
      const file = path.join(dir, 'all-types.gguf');
      const tensors = reference.cases.map((c) => {
        const t = ggmlTypeByName(c.type)!;
        const bytes = Uint8Array.from(Buffer.from(c.bytes, 'hex'));
        const rows = t.quantized ? bytes.length / t.typeSize : 4;
        return { name: `t.${c.type}`, type: c.type, shape: [rows, c.values / rows], data: () => bytes };
      });
      await writeGguf(file, tensors);
      const f = await openGguf(file);
      try {
        for (const c of reference.cases) {
          const e = f.entries.get(`t.${c.type}`)!;
          expect(e.dtype).toBe(c.type);
          const got = bitsOf(await f.readFloat32(e.key));
          expect(Buffer.from(got.buffer).toString('hex'), c.type).toBe(c.expected_f32_bits);
          expect(Buffer.from(await f.readStored(e.key)).toString('hex')).toBe(c.bytes);
        }
      } finally {
        await f.close();
      }
    });
  });
});
