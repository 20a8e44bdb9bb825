/**
 * Writes GGUF v3 files (ggml `docs/gguf.md`), streaming: the header from the declared types and shapes, then
 * each tensor's bytes when its turn comes, each at the next multiple of the alignment. For tests that build
 * files of other configurations (and malformed ones, through the overrides) and for benchmarks that generate
 * real-size GGUF checkpoints; the service itself only reads. Quantized tensors are given as their ggml blocks:
 * there is no quantizer here.
 */
import { createWriteStream } from 'node:fs';
import { float32ToFloat16 } from '../onnx/float16';
import { GGUF_DEFAULT_ALIGNMENT, GGUF_VALUE_TYPES, type GgufValue, type GgufValueType } from './gguf';
import { ggmlTypeByName } from './ggml/types';
import { elementCount } from './tensor-file';

/** A metadata key/value to write; arrays give their element type. */
export interface GgufValueToWrite {
  key: string;
  type: GgufValueType;
  elementType?: GgufValueType;
  value: GgufValue;
}

/** One tensor to write. */
export interface GgufTensorToWrite {
  name: string;
  /** ggml type name (`F32`, `F16`, `BF16`, `Q8_0`, `Q4_K`, …). */
  type: string;
  /** PyTorch-order shape (written reversed, as ggml's ne). */
  shape: readonly number[];
  /** Stored bytes (ggml blocks for quantized types), or float values for F32 / F16 / BF16. */
  data: () => Uint8Array | ArrayLike<number>;
  /** Overrides for writing malformed files in tests: the ggml type id, ne, or data offset stored in the info. */
  typeIdOverride?: number;
  neOverride?: readonly number[];
  offsetOverride?: number;
}

export interface GgufWriteOptions {
  metadata?: readonly GgufValueToWrite[];
  /** `general.alignment`; written as metadata when not 32. */
  alignment?: number;
  /** Version field (default 3). */
  version?: number;
}

class ByteSink {
  private chunks: Buffer[] = [];
  length = 0;
  push(b: Buffer) {
    this.chunks.push(b);
    this.length += b.length;
  }
  u32(v: number) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  u64(v: number | bigint) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  string(s: string) {
    const bytes = Buffer.from(s, 'utf8');
    this.u64(bytes.length);
    this.push(bytes);
  }
  value(type: GgufValueType, v: GgufValue, elementType?: GgufValueType) {
    const b = Buffer.alloc(8);
    switch (type) {
      case 'uint8':
        b.writeUInt8(v as number);
        return this.push(b.subarray(0, 1));
      case 'int8':
        b.writeInt8(v as number);
        return this.push(b.subarray(0, 1));
      case 'uint16':
        b.writeUInt16LE(v as number);
        return this.push(b.subarray(0, 2));
      case 'int16':
        b.writeInt16LE(v as number);
        return this.push(b.subarray(0, 2));
      case 'uint32':
        b.writeUInt32LE(v as number);
        return this.push(b.subarray(0, 4));
      case 'int32':
        b.writeInt32LE(v as number);
        return this.push(b.subarray(0, 4));
      case 'float32':
        b.writeFloatLE(v as number);
        return this.push(b.subarray(0, 4));
      case 'bool':
        b.writeUInt8(v ? 1 : 0);
        return this.push(b.subarray(0, 1));
      case 'string':
        return this.string(v as string);
      case 'uint64':
        b.writeBigUInt64LE(BigInt(v as number | bigint));
        return this.push(b);
      case 'int64':
        b.writeBigInt64LE(BigInt(v as number | bigint));
        return this.push(b);
      case 'float64':
        b.writeDoubleLE(v as number);
        return this.push(b);
      case 'array': {
        if (!elementType || !Array.isArray(v)) throw new Error('an array value needs its elementType and an array');
        this.u32(GGUF_VALUE_TYPES.indexOf(elementType));
        this.u64(v.length);
        for (const item of v) {
          if (elementType === 'array') throw new Error('nested arrays are not written by this writer');
          this.value(elementType, item);
        }
        return;
      }
    }
  }
  buffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

function encodeFloats(type: string, values: ArrayLike<number>): Uint8Array {
  switch (type) {
    case 'F32': {
      const f = Float32Array.from(values);
      return new Uint8Array(f.buffer);
    }
    case 'F16': {
      const h = float32ToFloat16(values);
      return new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
    }
    case 'BF16': {
      const f = Float32Array.from(values);
      const bits = new Uint32Array(f.buffer);
      const out = new Uint16Array(f.length);
      for (let i = 0; i < f.length; i++) out[i] = (bits[i] + 0x7fff + ((bits[i] >>> 16) & 1)) >>> 16;
      return new Uint8Array(out.buffer);
    }
    default:
      throw new Error(`float values can be written as F32, F16 or BF16, not ${type}: give the stored bytes`);
  }
}

/**
 * Write a GGUF file.
 * @returns bytes written.
 * @throws Error for an unknown type name, data whose size does not match the type and shape, or I/O failure.
 */
export async function writeGguf(path: string, tensors: readonly GgufTensorToWrite[], options: GgufWriteOptions = {}): Promise<number> {
  const alignment = options.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  const metadata = [...(options.metadata ?? [])];
  if (alignment !== GGUF_DEFAULT_ALIGNMENT && !metadata.some((m) => m.key === 'general.alignment')) metadata.unshift({ key: 'general.alignment', type: 'uint32', value: alignment });
  const pad = (n: number) => Math.ceil(n / alignment) * alignment;

  const head = new ByteSink();
  head.push(Buffer.from('GGUF', 'latin1'));
  head.u32(options.version ?? 3);
  head.u64(tensors.length);
  head.u64(metadata.length);
  for (const m of metadata) {
    head.string(m.key);
    head.u32(GGUF_VALUE_TYPES.indexOf(m.type));
    head.value(m.type, m.value, m.elementType);
  }
  const sizes: number[] = [];
  let offset = 0;
  for (const t of tensors) {
    const type = ggmlTypeByName(t.type);
    if (!type) throw new Error(`${t.name}: unknown ggml type ${t.type}`);
    const ne = t.neOverride ?? [...t.shape].reverse();
    const bytes = (elementCount(t.shape) / type.blockSize) * type.typeSize;
    sizes.push(bytes);
    head.string(t.name);
    head.u32(ne.length);
    for (const d of ne) head.u64(d);
    head.u32(t.typeIdOverride ?? type.id);
    head.u64(t.offsetOverride ?? offset);
    offset = pad(offset + bytes);
  }
  const header = head.buffer();
  const dataStart = tensors.length ? pad(header.length) : header.length;

  const stream = createWriteStream(path);
  const write = (chunk: Uint8Array) => new Promise<void>((resolve, reject) => stream.write(chunk, (err) => (err ? reject(err) : resolve())));
  let written = 0;
  try {
    await write(header);
    await write(new Uint8Array(dataStart - header.length));
    written = dataStart;
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i];
      const raw = t.data();
      const bytes = raw instanceof Uint8Array ? raw : encodeFloats(t.type, raw);
      if (bytes.length !== sizes[i]) throw new Error(`${t.name}: ${bytes.length} bytes for ${t.type} [${t.shape.join(', ')}], which needs ${sizes[i]}`);
      await write(bytes);
      const padding = i < tensors.length - 1 ? pad(bytes.length) - bytes.length : 0;
      await write(new Uint8Array(padding));
      written += bytes.length + padding;
    }
  } finally {
    await new Promise<void>((resolve, reject) => stream.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
  return written;
}
