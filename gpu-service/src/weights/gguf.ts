/**
 * A GGUF reader (format: ggml `docs/gguf.md`, versions 2 and 3, little-endian), as stable-diffusion.cpp writes
 * whole checkpoints and UNets and city96's ComfyUI-GGUF writes UNet / transformer files:
 *
 *   magic "GGUF" | uint32 version | uint64 tensor count | uint64 metadata count
 *   metadata: { string key, uint32 value type, value }*
 *   tensor infos: { string name, uint32 n_dims, int64 ne[n_dims] (innermost first), uint32 ggml type, uint64 offset }*
 *   padding to `general.alignment` (default 32), then the data section; offsets are relative to its start.
 *
 * Strings are a uint64 byte length and UTF-8 bytes. Tensor shapes are exposed in PyTorch order (ne reversed), or
 * as the `comfy.gguf.orig_shape.<name>` metadata says where ComfyUI-GGUF flattened a tensor to fit its blocks.
 *
 * Everything is validated before any tensor is read, with the checks of ggml's own `gguf_init_from_file` and
 * safetensors.ts: magic, version, counts the file cannot hold, metadata types, duplicate keys or names, the
 * alignment, dimension count and sizes, known and decodable ggml types, rows that are whole blocks, data that
 * lies inside the file at aligned offsets, and no two tensors overlapping. Tensors are then read one at a time
 * with positioned reads (never the whole file), and decoded to float32 exactly as ggml dequantizes them
 * (ggml/dequantize.ts), or handed out as their stored bytes for kernels that consume ggml blocks directly.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { GGML_TYPES, supportedGgmlTypeNames, UNSUPPORTED_GGML_TYPE_NAMES, type GgmlType } from './ggml/types';
import { HeaderReader } from './binary-header-reader';
import { WeightsFileError, type TensorEntry, type TensorFile } from './tensor-file';

/** GGUF metadata value types (gguf `gguf_type`), by id. */
export const GGUF_VALUE_TYPES = ['uint8', 'int8', 'uint16', 'int16', 'uint32', 'int32', 'float32', 'bool', 'string', 'array', 'uint64', 'int64', 'float64'] as const;
export type GgufValueType = (typeof GGUF_VALUE_TYPES)[number];

/** A metadata value: numbers (64-bit integers as bigint), booleans, strings, or arrays of them. */
export type GgufValue = number | bigint | boolean | string | GgufValue[];

/** One metadata key/value as stored. */
export interface GgufMetadataValue {
  type: GgufValueType;
  /** Element type of an array. */
  elementType?: GgufValueType;
  value: GgufValue;
}

/** A tensor of a GGUF file: `dtype` is the ggml type name (`F16`, `Q8_0`, `Q4_K`, …). */
export interface GgufTensorEntry extends TensorEntry {
  /** The ggml type the data is stored in. */
  ggmlType: GgmlType;
  /** Dimensions as stored (ggml `ne`, innermost first; blocks run along ne[0]). */
  ne: number[];
}

/** A GGUF file opened for reading. */
export interface GgufFile extends TensorFile {
  readonly format: 'gguf';
  /** GGUF version (2 or 3). */
  readonly version: number;
  /** Data section alignment (`general.alignment`, default 32). */
  readonly alignment: number;
  /** Absolute offset of the data section. */
  readonly dataOffset: number;
  /** The metadata with its stored types (`metadata` has the same keys rendered as strings). */
  readonly values: ReadonlyMap<string, GgufMetadataValue>;
  readonly entries: ReadonlyMap<string, GgufTensorEntry>;
  /**
   * The tensor's stored bytes, exactly as in the file: ggml blocks for a quantized type (rows of ne[0] values,
   * ne[0] / blockSize blocks each), little-endian elements otherwise.
   * @throws WeightsFileError for an unknown key or a short read.
   */
  readStored(key: string): Promise<Uint8Array>;
}

/** ggml's default data alignment (GGUF_DEFAULT_ALIGNMENT). */
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml's GGML_MAX_DIMS. */
const MAX_DIMS = 4;
/** Longest tensor name or metadata key accepted (stock ggml: 64; stable-diffusion.cpp builds with 160). */
const MAX_NAME_BYTES = 4096;
/** Longest metadata string value accepted (chat templates and the like are kilobytes). */
const MAX_STRING_BYTES = 64 * 1024 * 1024;
/** Arrays of arrays deeper than this are refused. */
const MAX_ARRAY_DEPTH = 8;
/** Smallest possible encodings, used to refuse counts the file cannot hold. */
const MIN_KV_BYTES = 8 + 1 + 4 + 1;
const MIN_TENSOR_INFO_BYTES = 8 + 1 + 4 + 4 + 8;
const VALUE_BYTES: Partial<Record<GgufValueType, number>> = { uint8: 1, int8: 1, uint16: 2, int16: 2, uint32: 4, int32: 4, float32: 4, bool: 1, uint64: 8, int64: 8, float64: 8 };

const ORIG_SHAPE_PREFIX = 'comfy.gguf.orig_shape.';

/**
 * Open and validate a GGUF file.
 * @throws WeightsFileError naming the file, and the tensor or key where there is one, for the first rule the file
 *         breaks (see the module comment).
 */
export async function openGguf(path: string): Promise<GgufFile> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const header = await readHeader(fh, path, size);
    return new GgufFileReader(path, fh, size, header);
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/** Only the header of a GGUF file (validated as by openGguf); the file is closed again. For listings. */
export async function readGgufHeader(path: string): Promise<GgufHeader & { sizeBytes: number }> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    return { ...(await readHeader(fh, path, size)), sizeBytes: size };
  } finally {
    await fh.close();
  }
}

/** A validated GGUF header. */
export interface GgufHeader {
  version: number;
  alignment: number;
  dataOffset: number;
  values: Map<string, GgufMetadataValue>;
  metadata: Record<string, string>;
  entries: Map<string, GgufTensorEntry>;
}

/** A metadata value as a string: numbers in decimal, arrays as JSON (64-bit integers beyond 2^53 as strings). */
export function renderGgufValue(v: GgufValue): string {
  return typeof v === 'string' ? v : Array.isArray(v) ? JSON.stringify(toJson(v)) : String(v);
}

function toJson(v: GgufValue): unknown {
  if (Array.isArray(v)) return v.map(toJson);
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  return v;
}

function dims(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

async function readHeader(fh: FileHandle, path: string, size: number): Promise<GgufHeader> {
  const fail = (message: string): never => {
    throw new WeightsFileError(path, `not a valid GGUF file: ${message}`);
  };
  const r = new HeaderReader(fh, size, fail);
  if (size < 24) fail(`the file has ${size} bytes, fewer than GGUF's 24-byte header (truncated?)`);
  const magic = await r.bytes(4, 'the magic');
  if (magic.toString('latin1') !== 'GGUF') fail(`the magic is ${JSON.stringify(magic.toString('latin1'))}, not "GGUF"`);
  const version = await r.u32('the version');
  if ((version & 0xffff) === 0 && version !== 0) fail(`version ${version} reads as a byte-swapped one: big-endian GGUF files are not read`);
  if (version === 1) fail('GGUF version 1 is not read (ggml dropped it too): convert the file again with a current tool');
  if (version !== 2 && version !== 3) fail(`version ${version} is not GGUF 2 or 3`);
  const tensorCount = await r.count('the tensor count', MIN_TENSOR_INFO_BYTES);
  const kvCount = await r.count('the metadata key/value count', MIN_KV_BYTES);

  const values = new Map<string, GgufMetadataValue>();
  for (let i = 0; i < kvCount; i++) {
    const key = await r.string(`metadata key ${i}`, MAX_NAME_BYTES);
    if (!key) fail(`metadata key ${i} is empty`);
    if (values.has(key)) fail(`metadata key "${key}" appears twice`);
    const typeId = await r.u32(`the type of metadata "${key}"`);
    const type = GGUF_VALUE_TYPES[typeId];
    if (!type) fail(`metadata "${key}" has unknown value type ${typeId}`);
    values.set(key, await readValue(r, type, `metadata "${key}"`, 0, fail));
  }
  const metadata: Record<string, string> = {};
  for (const [k, v] of values) metadata[k] = renderGgufValue(v.value);

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const align = values.get('general.alignment');
  if (align) {
    if (align.type !== 'uint32' || typeof align.value !== 'number') fail(`general.alignment must be a uint32, not ${align.type}`);
    alignment = align.value as number;
    if (alignment === 0 || (alignment & (alignment - 1)) !== 0) fail(`general.alignment ${alignment} is not a power of 2`);
  }

  type Info = { name: string; ne: number[]; type: GgmlType; offset: number };
  const infos: Info[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const name = await r.string(`tensor name ${i}`, MAX_NAME_BYTES);
    if (!name) fail(`tensor ${i} has an empty name`);
    if (names.has(name)) fail(`tensor "${name}" appears twice`);
    names.add(name);
    const nDims = await r.u32(`tensor "${name}"'s dimension count`);
    if (nDims > MAX_DIMS) fail(`tensor "${name}" has ${nDims} dimensions, more than ggml's ${MAX_DIMS}`);
    const ne: number[] = [];
    let elements = 1n;
    for (let d = 0; d < nDims; d++) {
      const n = await r.i64(`tensor "${name}"'s dimension ${d}`);
      if (n < 0n) fail(`tensor "${name}" has a negative dimension ${d} (${n})`);
      elements *= n;
      ne.push(Number(n));
    }
    if (elements > BigInt(Number.MAX_SAFE_INTEGER)) fail(`tensor "${name}" has ${elements} elements (ne ${dims(ne)}), more than any file holds`);
    const typeId = await r.u32(`tensor "${name}"'s type`);
    const type = GGML_TYPES.get(typeId);
    if (!type) {
      const known = UNSUPPORTED_GGML_TYPE_NAMES.get(typeId);
      if (known) fail(`tensor "${name}" is stored as ${known} (ggml type ${typeId}), which this engine does not decode (it decodes ${supportedGgmlTypeNames()})`);
      fail(`tensor "${name}" has unknown ggml type ${typeId}`);
    }
    const offset = await r.u64(`tensor "${name}"'s offset`);
    if (offset > BigInt(Number.MAX_SAFE_INTEGER)) fail(`tensor "${name}" has offset ${offset}, beyond any file`);
    infos.push({ name, ne, type: type!, offset: Number(offset) });
  }
  const dataOffset = tensorCount > 0 ? Math.ceil(r.pos / alignment) * alignment : r.pos;
  if (dataOffset > size) fail(`the data section would start at byte ${dataOffset}, past the end of the ${size}-byte file (truncated?)`);

  const entries = new Map<string, GgufTensorEntry>();
  for (const { name, ne, type, offset } of infos) {
    const elements = ne.reduce((a, b) => a * b, 1);
    const torchShape = [...ne].reverse();
    const row = ne.length > 0 ? ne[0] : 1;
    if (row % type.blockSize !== 0) {
      fail(`tensor "${name}" (${type.name} ${dims(torchShape)}) has rows of ${row} values, not a whole number of ${type.name} blocks of ${type.blockSize}`);
    }
    const byteLength = (elements / type.blockSize) * type.typeSize;
    if (offset % alignment !== 0) fail(`tensor "${name}" has data offset ${offset}, not a multiple of the alignment ${alignment}`);
    const start = dataOffset + offset;
    if (start + byteLength > size) {
      fail(`tensor "${name}" (${type.name} ${dims(torchShape)}) needs ${byteLength} bytes at byte ${start}, but the ${size}-byte file ends first (truncated?)`);
    }
    let shape = torchShape;
    const orig = values.get(ORIG_SHAPE_PREFIX + name);
    if (orig) {
      const s = Array.isArray(orig.value) ? orig.value.map((d) => (typeof d === 'bigint' ? Number(d) : d)) : [];
      if (!s.length || !s.every((d) => Number.isSafeInteger(d) && (d as number) >= 0) || s.reduce((a: number, b) => a * (b as number), 1) !== elements) {
        fail(`metadata "${ORIG_SHAPE_PREFIX}${name}" (${renderGgufValue(orig.value)}) is not a shape of the tensor's ${elements} values`);
      }
      shape = s as number[];
    }
    entries.set(name, { key: name, dtype: type.name, shape, offset: start, byteLength, ggmlType: type, ne });
  }
  const sorted = [...entries.values()].filter((e) => e.byteLength > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    if (sorted[i].offset < prev.offset + prev.byteLength) fail(`tensors "${prev.key}" and "${sorted[i].key}" overlap`);
  }
  return { version, alignment, dataOffset, values, metadata, entries };
}

async function readValue(r: HeaderReader, type: GgufValueType, what: string, depth: number, fail: (m: string) => never): Promise<GgufMetadataValue> {
  switch (type) {
    case 'uint8':
      return { type, value: await r.u8(what) };
    case 'int8':
      return { type, value: await r.i8(what) };
    case 'uint16':
      return { type, value: await r.u16(what) };
    case 'int16':
      return { type, value: await r.i16(what) };
    case 'uint32':
      return { type, value: await r.u32(what) };
    case 'int32':
      return { type, value: await r.i32(what) };
    case 'float32':
      return { type, value: await r.f32(what) };
    case 'bool':
      return { type, value: (await r.u8(what)) !== 0 };
    case 'string':
      return { type, value: await r.string(what, MAX_STRING_BYTES) };
    case 'uint64':
      return { type, value: await r.u64(what) };
    case 'int64':
      return { type, value: await r.i64(what) };
    case 'float64':
      return { type, value: await r.f64(what) };
    case 'array': {
      if (depth >= MAX_ARRAY_DEPTH) fail(`${what} nests arrays more than ${MAX_ARRAY_DEPTH} deep`);
      const elementId = await r.u32(`${what}'s element type`);
      const elementType = GGUF_VALUE_TYPES[elementId];
      if (!elementType) fail(`${what} is an array of unknown value type ${elementId}`);
      const minBytes = VALUE_BYTES[elementType] ?? (elementType === 'string' ? 8 : 4 + 8);
      const n = await r.count(`${what}'s length`, minBytes);
      const items: GgufValue[] = new Array(n);
      for (let i = 0; i < n; i++) items[i] = (await readValue(r, elementType, `${what}[${i}]`, depth + 1, fail)).value;
      return { type, elementType, value: items };
    }
  }
}

class GgufFileReader implements GgufFile {
  readonly format = 'gguf';
  readonly version: number;
  readonly alignment: number;
  readonly dataOffset: number;
  readonly values: ReadonlyMap<string, GgufMetadataValue>;
  readonly metadata: Readonly<Record<string, string>>;
  readonly entries: ReadonlyMap<string, GgufTensorEntry>;

  constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly sizeBytes: number,
    header: GgufHeader,
  ) {
    this.version = header.version;
    this.alignment = header.alignment;
    this.dataOffset = header.dataOffset;
    this.values = header.values;
    this.metadata = header.metadata;
    this.entries = header.entries;
  }

  async readStored(key: string): Promise<Uint8Array> {
    const entry = this.entries.get(key);
    if (!entry) throw new WeightsFileError(this.path, `has no tensor "${key}"`);
    const bytes = new Uint8Array(entry.byteLength);
    let got = 0;
    while (got < entry.byteLength) {
      const { bytesRead } = await this.fh.read(bytes, got, entry.byteLength - got, entry.offset + got);
      if (bytesRead === 0) throw new WeightsFileError(this.path, `tensor "${key}" is cut short at byte ${entry.offset + got} (the file is truncated)`);
      got += bytesRead;
    }
    return bytes;
  }

  async readFloat32(key: string): Promise<Float32Array> {
    const bytes = await this.readStored(key);
    const entry = this.entries.get(key)!;
    const out = new Float32Array((bytes.length / entry.ggmlType.typeSize) * entry.ggmlType.blockSize);
    entry.ggmlType.decode(bytes, out);
    return out;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
