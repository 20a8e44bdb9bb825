/**
 * Writes safetensors files (format: huggingface/safetensors README), streaming: the header is computed from
 * the declared dtypes and shapes, then each tensor's values are produced and written one at a time. Used by
 * the benchmark's real-size checkpoint generator and by tests that build checkpoints of other
 * configurations; the service itself only reads.
 */
import { createWriteStream } from 'node:fs';
import { float32ToFloat16 } from '../onnx/float16';
import { ELEMENT_BYTES } from './decode';
import { elementCount } from './tensor-file';

/** One tensor to write: values are produced when its turn comes. */
export interface TensorToWrite {
  key: string;
  /** 'F32' | 'F16' | 'BF16' | 'I64' | 'I32'. */
  dtype: 'F32' | 'F16' | 'BF16' | 'I64' | 'I32';
  shape: readonly number[];
  /** float values (converted to dtype; integers rounded), row-major in `shape`. */
  values: () => ArrayLike<number>;
}

function encode(t: TensorToWrite, values: ArrayLike<number>): Uint8Array {
  switch (t.dtype) {
    case 'F32': {
      const f = values instanceof Float32Array ? values : Float32Array.from(values);
      return new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
    }
    case 'F16': {
      const h = float32ToFloat16(values);
      return new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
    }
    case 'BF16': {
      const f = Float32Array.from(values);
      const bits = new Uint32Array(f.buffer);
      const out = new Uint16Array(f.length);
      // Round to nearest even, as torch's float32 → bfloat16 conversion does.
      for (let i = 0; i < f.length; i++) out[i] = (bits[i] + 0x7fff + ((bits[i] >>> 16) & 1)) >>> 16;
      return new Uint8Array(out.buffer);
    }
    case 'I64':
      return new Uint8Array(BigInt64Array.from(Array.from(values, (v) => BigInt(Math.round(v)))).buffer);
    case 'I32':
      return new Uint8Array(Int32Array.from(values, (v) => Math.round(v)).buffer);
  }
}

/**
 * Write `tensors` to `path` in order.
 * @param metadata `__metadata__` string map (optional).
 * @returns bytes written.
 * @throws Error when a tensor's values do not match its shape, or on I/O failure.
 */
export async function writeSafetensors(path: string, tensors: readonly TensorToWrite[], metadata?: Record<string, string>): Promise<number> {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const bytes = elementCount(t.shape) * ELEMENT_BYTES[t.dtype];
    header[t.key] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces to a multiple of 8 bytes (as the reference writer does) so data is aligned.
  const jsonBytes = Buffer.byteLength(json);
  json += ' '.repeat((8 - ((8 + jsonBytes) % 8)) % 8);
  const stream = createWriteStream(path);
  const write = (chunk: Uint8Array) => new Promise<void>((resolve, reject) => stream.write(chunk, (err) => (err ? reject(err) : resolve())));
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
    await write(len);
    await write(Buffer.from(json));
    for (const t of tensors) {
      const values = t.values();
      if (values.length !== elementCount(t.shape)) throw new Error(`${t.key}: ${values.length} values for shape [${t.shape.join(', ')}]`);
      await write(encode(t, values));
    }
  } finally {
    await new Promise<void>((resolve, reject) => stream.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
  return 8 + Buffer.byteLength(json) + offset;
}
