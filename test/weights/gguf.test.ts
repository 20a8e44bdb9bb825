/**
 * The GGUF reader: header, every metadata value type, tensor infos in PyTorch order, alignment, ComfyUI-GGUF's
 * original shapes, and the refusals of files that lie (each naming the rule and the tensor or key).
 */
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGguf, readGgufHeader } from '../../gpu-service/src/weights/gguf';
import { writeGguf, type GgufTensorToWrite } from '../../gpu-service/src/weights/gguf-writer';
import { WeightsFileError } from '../../gpu-service/src/weights/tensor-file';

let dir: string;
let n = 0;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'gguf-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const file = () => path.join(dir, `f${n++}.gguf`);

/** Q8_0 blocks with scale 0.5 and quants −16..15. */
function q8Blocks(count: number): Uint8Array {
  const b = new Uint8Array(34 * count);
  for (let k = 0; k < count; k++) {
    b.set([0x00, 0x38], 34 * k); // float16 0.5
    for (let j = 0; j < 32; j++) b[34 * k + 2 + j] = (j - 16) & 0xff;
  }
  return b;
}

const small: GgufTensorToWrite[] = [
  { name: 'model.diffusion_model.out.2.weight', type: 'F16', shape: [4, 2, 3, 3], data: () => Array.from({ length: 72 }, (_, i) => i / 8 - 4) },
  { name: 'model.diffusion_model.time_embed.0.weight', type: 'Q8_0', shape: [3, 64], data: () => q8Blocks(6) },
  { name: 'model.diffusion_model.out.2.bias', type: 'F32', shape: [4], data: () => [0.25, -1, 3, 1e-8] },
];

async function expectRefused(p: string, pattern: RegExp): Promise<void> {
  const err = await openGguf(p).then(
    (f) => (f.close(), undefined),
    (e: unknown) => e,
  );
  expect(err, 'the file should be refused').toBeInstanceOf(WeightsFileError);
  expect((err as Error).message).toContain(p);
  expect((err as Error).message).toMatch(pattern);
}

describe('GGUF reader', () => {
  it('reads tensor infos in PyTorch order, with ggml type names, aligned offsets and the values written', async () => {
    const p = file();
    await writeGguf(p, small, { metadata: [{ key: 'general.architecture', type: 'string', value: 'sd1' }] });
    const f = await openGguf(p);
    try {
      expect(f.format).toBe('gguf');
      expect(f.version).toBe(3);
      expect(f.alignment).toBe(32);
      expect(f.dataOffset % 32).toBe(0);
      expect([...f.entries.keys()]).toEqual(small.map((t) => t.name));
      const conv = f.entries.get('model.diffusion_model.out.2.weight')!;
      expect(conv).toMatchObject({ dtype: 'F16', shape: [4, 2, 3, 3], ne: [3, 3, 2, 4], byteLength: 144 });
      const q = f.entries.get('model.diffusion_model.time_embed.0.weight')!;
      expect(q).toMatchObject({ dtype: 'Q8_0', shape: [3, 64], ne: [64, 3], byteLength: 6 * 34 });
      expect(q.ggmlType).toMatchObject({ id: 8, blockSize: 32, typeSize: 34, quantized: true });
      for (const e of f.entries.values()) expect((e.offset - f.dataOffset) % 32).toBe(0);
      expect(Array.from(await f.readFloat32(conv.key))).toEqual(Array.from({ length: 72 }, (_, i) => i / 8 - 4));
      expect(Array.from(await f.readFloat32('model.diffusion_model.out.2.bias'))).toEqual(Array.from(Float32Array.from([0.25, -1, 3, 1e-8])));
      const deq = await f.readFloat32(q.key);
      expect(deq.length).toBe(192);
      expect(Array.from(deq.subarray(0, 34))).toEqual([...Array.from({ length: 32 }, (_, j) => (j - 16) * 0.5), -8, -7.5]);
      expect(Array.from(await f.readStored(q.key))).toEqual(Array.from(q8Blocks(6)));
      await expect(f.readFloat32('nope')).rejects.toThrow(/has no tensor "nope"/);
      expect(f.metadata).toEqual({ 'general.architecture': 'sd1' });
    } finally {
      await f.close();
    }
  });

  it('exposes every metadata value type, typed and as strings (arrays as JSON)', async () => {
    const p = file();
    const big = 2n ** 60n + 3n;
    await writeGguf(p, small.slice(2), {
      version: 2,
      metadata: [
        { key: 'u8', type: 'uint8', value: 250 },
        { key: 'i8', type: 'int8', value: -5 },
        { key: 'u16', type: 'uint16', value: 65000 },
        { key: 'i16', type: 'int16', value: -30000 },
        { key: 'u32', type: 'uint32', value: 4000000000 },
        { key: 'i32', type: 'int32', value: -2000000000 },
        { key: 'f32', type: 'float32', value: 0.5 },
        { key: 'yes', type: 'bool', value: true },
        { key: 'no', type: 'bool', value: false },
        { key: 'name', type: 'string', value: 'stable diffusion ✓' },
        { key: 'u64', type: 'uint64', value: big },
        { key: 'i64', type: 'int64', value: -(2n ** 40n) },
        { key: 'f64', type: 'float64', value: 1 / 3 },
        { key: 'ints', type: 'array', elementType: 'int32', value: [1, -2, 3] },
        { key: 'strings', type: 'array', elementType: 'string', value: ['a', 'b "c"'] },
        { key: 'u64s', type: 'array', elementType: 'uint64', value: [7n, big] },
        { key: 'empty', type: 'array', elementType: 'float32', value: [] },
      ],
    });
    const f = await openGguf(p);
    try {
      expect(f.version).toBe(2);
      expect(f.metadata).toEqual({
        u8: '250',
        i8: '-5',
        u16: '65000',
        i16: '-30000',
        u32: '4000000000',
        i32: '-2000000000',
        f32: '0.5',
        yes: 'true',
        no: 'false',
        name: 'stable diffusion ✓',
        u64: big.toString(),
        i64: (-(2n ** 40n)).toString(),
        f64: String(1 / 3),
        ints: '[1,-2,3]',
        strings: '["a","b \\"c\\""]',
        u64s: `[7,"${big}"]`,
        empty: '[]',
      });
      expect(f.values.get('u64')).toEqual({ type: 'uint64', value: big });
      expect(f.values.get('strings')).toEqual({ type: 'array', elementType: 'string', value: ['a', 'b "c"'] });
      expect(f.values.get('f32')).toEqual({ type: 'float32', value: 0.5 });
    } finally {
      await f.close();
    }
  });

  it('places the data section at general.alignment and reads a header without the data', async () => {
    const p = file();
    await writeGguf(p, small, { alignment: 64 });
    const h = await readGgufHeader(p);
    expect(h.alignment).toBe(64);
    expect(h.dataOffset % 64).toBe(0);
    for (const e of h.entries.values()) expect((e.offset - h.dataOffset) % 64).toBe(0);
    const f = await openGguf(p);
    try {
      expect(Array.from(await f.readFloat32('model.diffusion_model.out.2.bias'))).toEqual(Array.from(Float32Array.from([0.25, -1, 3, 1e-8])));
    } finally {
      await f.close();
    }
  });

  it('takes the PyTorch shape from comfy.gguf.orig_shape where ComfyUI-GGUF flattened a tensor, and refuses one that does not fit', async () => {
    const p = file();
    const flat: GgufTensorToWrite = { name: 'input_blocks.0.0.weight', type: 'F32', shape: [6, 12], data: () => Array.from({ length: 72 }, (_, i) => i) };
    await writeGguf(p, [flat], { metadata: [{ key: 'comfy.gguf.orig_shape.input_blocks.0.0.weight', type: 'array', elementType: 'int32', value: [4, 2, 3, 3] }] });
    const f = await openGguf(p);
    try {
      expect(f.entries.get(flat.name)).toMatchObject({ shape: [4, 2, 3, 3], ne: [12, 6] });
      expect((await f.readFloat32(flat.name))[71]).toBe(71);
    } finally {
      await f.close();
    }
    const bad = file();
    await writeGguf(bad, [flat], { metadata: [{ key: 'comfy.gguf.orig_shape.input_blocks.0.0.weight', type: 'array', elementType: 'int32', value: [4, 2, 3, 4] }] });
    await expectRefused(bad, /comfy\.gguf\.orig_shape\.input_blocks\.0\.0\.weight.*not a shape of the tensor's 72 values/);
  });

  describe('refuses files that lie', () => {
    it('a truncated file: the tensor whose data runs past the end, or the header field cut off', async () => {
      const p = file();
      const size = await writeGguf(p, small);
      await truncate(p, size - 4);
      await expectRefused(p, /tensor "model\.diffusion_model\.out\.2\.bias" \(F32 \[4\]\) needs 16 bytes at byte \d+, but the \d+-byte file ends first \(truncated\?\)/);
      await truncate(p, 100);
      await expectRefused(p, /tensor "model\.diffusion_model\.out\.2\.weight"'s dimension 3 at byte \d+ needs 8 bytes but the 100-byte file ends first \(truncated\?\)/);
      await truncate(p, 10);
      await expectRefused(p, /fewer than GGUF's 24-byte header/);
    });

    it('wrong magic, version 1, a big-endian file, an unknown version', async () => {
      const p = file();
      await writeGguf(p, small);
      const bytes = await readFile(p);
      const patched = async (at: number, b: number[]) => {
        const q = file();
        const copy = Buffer.from(bytes);
        copy.set(b, at);
        await writeFile(q, copy);
        return q;
      };
      await expectRefused(await patched(0, [0x47, 0x47, 0x4d, 0x4c]), /the magic is "GGML", not "GGUF"/);
      await expectRefused(await patched(4, [1, 0, 0, 0]), /GGUF version 1 is not read/);
      await expectRefused(await patched(4, [0, 0, 0, 3]), /big-endian GGUF files are not read/);
      await expectRefused(await patched(4, [9, 0, 0, 0]), /version 9 is not GGUF 2 or 3/);
      // Counts the file cannot hold are refused before anything is allocated.
      await expectRefused(await patched(8, [0, 0, 0, 0, 0, 1, 0, 0]), /the tensor count is 1099511627776, more than the \d+ bytes left in the file can hold/);
      await expectRefused(await patched(16, [0, 0, 0, 0, 0, 0, 0, 1]), /the metadata key\/value count is 72057594037927936, more than/);
    });

    it('an unknown or undecodable tensor type, naming the tensor', async () => {
      const p = file();
      await writeGguf(p, [{ ...small[2], typeIdOverride: 99 }]);
      await expectRefused(p, /tensor "model\.diffusion_model\.out\.2\.bias" has unknown ggml type 99/);
      const iq = file();
      await writeGguf(iq, [{ ...small[2], typeIdOverride: 16 }]);
      await expectRefused(iq, /tensor "model\.diffusion_model\.out\.2\.bias" is stored as IQ2_XXS \(ggml type 16\), which this engine does not decode \(it decodes F32, F16, Q4_0.*Q6_K/);
    });

    it('a byte count that does not fit type and shape: rows that are not whole blocks', async () => {
      const p = file();
      // 192 values as ne [30, …] rows: not whole Q8_0 blocks of 32.
      await writeGguf(p, [{ ...small[1], neOverride: [48, 4] }]);
      await expectRefused(p, /tensor "model\.diffusion_model\.time_embed\.0\.weight" \(Q8_0 \[4, 48\]\) has rows of 48 values, not a whole number of Q8_0 blocks of 32/);
    });

    it('offsets outside the file, unaligned, or overlapping another tensor', async () => {
      const outside = file();
      await writeGguf(outside, [small[0], { ...small[2], offsetOverride: 1 << 20 }]);
      await expectRefused(outside, /tensor "model\.diffusion_model\.out\.2\.bias" \(F32 \[4\]\) needs 16 bytes at byte \d+, but the \d+-byte file ends first/);
      const unaligned = file();
      await writeGguf(unaligned, [small[0], { ...small[2], offsetOverride: 8 }]);
      await expectRefused(unaligned, /tensor "model\.diffusion_model\.out\.2\.bias" has data offset 8, not a multiple of the alignment 32/);
      const overlap = file();
      await writeGguf(overlap, [small[0], { ...small[2], offsetOverride: 64 }]);
      await expectRefused(overlap, /tensors "model\.diffusion_model\.out\.2\.weight" and "model\.diffusion_model\.out\.2\.bias" overlap/);
    });

    it('duplicate names, too many dimensions, a bad alignment, an absurd array or string length', async () => {
      const dup = file();
      await writeGguf(dup, [small[0], { ...small[2], name: small[0].name }]);
      await expectRefused(dup, /tensor "model\.diffusion_model\.out\.2\.weight" appears twice/);
      const dims = file();
      await writeGguf(dims, [{ ...small[2], neOverride: [1, 1, 4, 1, 1] }]);
      await expectRefused(dims, /tensor "model\.diffusion_model\.out\.2\.bias" has 5 dimensions, more than ggml's 4/);
      const align = file();
      await writeGguf(align, small, { metadata: [{ key: 'general.alignment', type: 'uint32', value: 48 }] });
      await expectRefused(align, /general\.alignment 48 is not a power of 2/);
      const alignType = file();
      await writeGguf(alignType, small, { metadata: [{ key: 'general.alignment', type: 'uint64', value: 64n }] });
      await expectRefused(alignType, /general\.alignment must be a uint32, not uint64/);
      const dupKey = file();
      await writeGguf(dupKey, small, {
        metadata: [
          { key: 'general.name', type: 'string', value: 'a' },
          { key: 'general.name', type: 'string', value: 'b' },
        ],
      });
      await expectRefused(dupKey, /metadata key "general\.name" appears twice/);

      const arr = file();
      await writeGguf(arr, small, { metadata: [{ key: 'tokens', type: 'array', elementType: 'uint32', value: [1, 2, 3] }] });
      const bytes = await readFile(arr);
      // The array's length field follows key, type and element type: 24 + (8 + 6) + 4 + 4.
      bytes.writeBigUInt64LE(2n ** 50n, 24 + 14 + 8);
      await writeFile(arr, bytes);
      await expectRefused(arr, /metadata "tokens"'s length is 1125899906842624, more than the \d+ bytes left in the file can hold/);

      const str = file();
      await writeGguf(str, small, { metadata: [{ key: 'general.name', type: 'string', value: 'tiny' }] });
      const sb = await readFile(str);
      sb.writeBigUInt64LE(2n ** 33n, 24 + (8 + 12) + 4);
      await writeFile(str, sb);
      await expectRefused(str, /metadata "general\.name"'s length is 8589934592, more than the \d+ bytes left/);
    });
  });
});
