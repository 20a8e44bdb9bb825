import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSafetensors } from '../../gpu-service/src/weights/safetensors';
import { writeSafetensors } from '../../gpu-service/src/weights/safetensors-writer';
import { decodeToFloat32 } from '../../gpu-service/src/weights/decode';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'safetensors-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A file with a hand-written header and data region. */
async function rawFile(name: string, header: unknown, data: Uint8Array): Promise<string> {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const p = path.join(dir, name);
  await writeFile(p, Buffer.concat([len, json, data]));
  return p;
}

describe('safetensors reader', () => {
  it('reads F32, F16 and BF16 tensors back as the values written, with shapes and metadata', async () => {
    const p = path.join(dir, 'ok.safetensors');
    const values = [0.5, -2, 3.25, 1 / 3, 1000, -0.001];
    await writeSafetensors(
      p,
      [
        { key: 'a.weight', dtype: 'F32', shape: [2, 3], values: () => values },
        { key: 'b.weight', dtype: 'F16', shape: [6], values: () => values },
        { key: 'c.weight', dtype: 'BF16', shape: [3, 2], values: () => values },
        { key: 'ids', dtype: 'I64', shape: [1, 3], values: () => [0, 1, 76] },
      ],
      { format: 'pt' },
    );
    const f = await openSafetensors(p);
    try {
      expect([...f.entries.keys()]).toEqual(['a.weight', 'b.weight', 'c.weight', 'ids']);
      expect(f.entries.get('c.weight')!.shape).toEqual([3, 2]);
      expect(f.metadata).toEqual({ format: 'pt' });
      expect(Array.from(await f.readFloat32('a.weight'))).toEqual(Array.from(Float32Array.from(values)));
      // float16 keeps 11 significant bits, bfloat16 8: compare to the rounded values.
      const f16 = await f.readFloat32('b.weight');
      values.forEach((v, i) => expect(Math.abs(f16[i] - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11));
      const bf16 = await f.readFloat32('c.weight');
      values.forEach((v, i) => expect(Math.abs(bf16[i] - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -8));
      expect(Array.from(await f.readFloat32('ids'))).toEqual([0, 1, 76]);
    } finally {
      await f.close();
    }
  });

  it('decodes float8 e4m3fn and e5m2 as torch defines them', () => {
    // e4m3fn: 0x38 = 1.0, 0x7e = 448 (max), 0x7f = NaN, 0x01 = 2^-9; e5m2: 0x3c = 1.0, 0x7c = inf.
    const e4 = decodeToFloat32(Uint8Array.from([0x38, 0x7e, 0x7f, 0x01, 0xb8]), 'F8_E4M3');
    expect(Array.from(e4)).toEqual([1, 448, NaN, 2 ** -9, -1]);
    const e5 = decodeToFloat32(Uint8Array.from([0x3c, 0x7c, 0x40]), 'F8_E5M2');
    expect(Array.from(e5)).toEqual([1, Infinity, 2]);
  });

  it('refuses a header whose offsets run past the data (a truncated file), naming the tensor', async () => {
    const p = path.join(dir, 'trunc.safetensors');
    await writeSafetensors(p, [{ key: 'w', dtype: 'F32', shape: [64], values: () => new Float32Array(64) }]);
    const { size } = await import('node:fs/promises').then((fs) => fs.stat(p));
    await truncate(p, size - 10);
    await expect(openSafetensors(p)).rejects.toThrow(/tensor "w" data_offsets \[0, 256\] lie outside the 246-byte data region/);
  });

  it('refuses a header that lies about the byte count of a dtype and shape', async () => {
    const p = await rawFile('lies.safetensors', { w: { dtype: 'F32', shape: [4, 4], data_offsets: [0, 32] } }, new Uint8Array(64));
    await expect(openSafetensors(p)).rejects.toThrow(/tensor "w" \(F32 \[4, 4\]\) needs 64 bytes but its data_offsets span 32/);
  });

  it('refuses overlapping tensors, unknown dtypes, bad shapes, non-JSON and an impossible header length', async () => {
    const overlap = await rawFile(
      'overlap.safetensors',
      { a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] } },
      new Uint8Array(24),
    );
    await expect(openSafetensors(overlap)).rejects.toThrow(/tensors "a" and "b" overlap/);
    const dtype = await rawFile('dtype.safetensors', { a: { dtype: 'Q4', shape: [4], data_offsets: [0, 2] } }, new Uint8Array(2));
    await expect(openSafetensors(dtype)).rejects.toThrow(/tensor "a" has unsupported dtype "Q4"/);
    const shape = await rawFile('shape.safetensors', { a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4));
    await expect(openSafetensors(shape)).rejects.toThrow(/tensor "a" has an invalid shape \[-1\]/);
    const notJson = path.join(dir, 'notjson.safetensors');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(5n);
    await writeFile(notJson, Buffer.concat([len, Buffer.from('{"a":')]));
    await expect(openSafetensors(notJson)).rejects.toThrow(/the header is not JSON/);
    const pickle = path.join(dir, 'model.ckpt');
    await writeFile(pickle, Buffer.from([0x80, 0x02, 0x63, 0x63, 0x6f, 0x6c, 0x6c, 0x65, 0x63, 0x74]));
    await expect(openSafetensors(pickle)).rejects.toThrow(/header length \d+ is outside/);
  });

  it('reads a tensor with positioned reads (the file is not loaded whole) and reports a file cut after opening', async () => {
    const p = path.join(dir, 'cut.safetensors');
    await writeSafetensors(p, [
      { key: 'a', dtype: 'F32', shape: [1024], values: () => new Float32Array(1024).fill(1) },
      { key: 'b', dtype: 'F32', shape: [1024], values: () => new Float32Array(1024).fill(2) },
    ]);
    const f = await openSafetensors(p);
    try {
      const whole = await readFile(p);
      await truncate(p, whole.length - 100);
      expect((await f.readFloat32('a'))[1023]).toBe(1);
      await expect(f.readFloat32('b')).rejects.toThrow(/tensor "b" is cut short/);
    } finally {
      await f.close();
    }
  });
});
