/**
 * A safetensors reader (format: huggingface/safetensors README "Format"): 8-byte little-endian header length
 * N, N bytes of JSON `{key: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}`,
 * then the data region, offsets relative to its start.
 *
 * The header is validated against the file before any tensor is read: length within the file, every entry
 * with a known dtype, non-negative integer dims, offsets inside the data region, byte count equal to
 * dtype size × element count, and no two tensors overlapping. Tensors are read one at a time with
 * positioned reads, so the file is never held in memory whole.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { decodeToFloat32, ELEMENT_BYTES } from './decode';
import { elementCount, WeightsFileError, type TensorEntry, type TensorFile } from './tensor-file';

/** Headers above this are refused (the reference implementation's limit is 100 MB). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/**
 * Open and validate a safetensors file.
 * @throws WeightsFileError naming the file and the first rule the header breaks (truncated file, header
 *         length, JSON, dtype, shape, offsets, overlap).
 */
export async function openSafetensors(path: string): Promise<TensorFile> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const header = await readHeader(fh, path, size);
    return new SafetensorsFile(path, fh, size, header.entries, header.metadata);
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/**
 * Only the tensor entries and metadata of a safetensors file (validated as by openSafetensors); the file is
 * closed again. Used by listings that classify files without reading tensors.
 */
export async function readSafetensorsHeader(path: string): Promise<{ entries: Map<string, TensorEntry>; metadata: Record<string, string>; sizeBytes: number }> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    return { ...(await readHeader(fh, path, size)), sizeBytes: size };
  } finally {
    await fh.close();
  }
}

async function readHeader(fh: FileHandle, path: string, size: number): Promise<{ entries: Map<string, TensorEntry>; metadata: Record<string, string> }> {
  const fail = (message: string): never => {
    throw new WeightsFileError(path, `not a valid safetensors file: ${message}`);
  };
  if (size < 8) fail(`the file has ${size} bytes, fewer than the 8-byte header length`);
  const head = Buffer.alloc(8);
  await fh.read(head, 0, 8, 0);
  const n = head.readBigUInt64LE(0);
  if (n < 2n || n > BigInt(MAX_HEADER_BYTES)) fail(`header length ${n} is outside 2..${MAX_HEADER_BYTES}`);
  const headerBytes = Number(n);
  if (8 + headerBytes > size) fail(`header length ${headerBytes} runs past the end of the ${size}-byte file (truncated?)`);
  const json = Buffer.alloc(headerBytes);
  await fh.read(json, 0, headerBytes, 8);
  let parsed: unknown;
  try {
    parsed = JSON.parse(json.toString('utf8'));
  } catch (err) {
    fail(`the header is not JSON (${(err as Error).message})`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) fail('the header is not a JSON object');
  const dataStart = 8 + headerBytes;
  const dataBytes = size - dataStart;
  const entries = new Map<string, TensorEntry>();
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (key === '__metadata__') {
      if (value && typeof value === 'object') {
        for (const [mk, mv] of Object.entries(value as Record<string, unknown>)) metadata[mk] = typeof mv === 'string' ? mv : JSON.stringify(mv);
      }
      continue;
    }
    const v = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    if (!v || typeof v !== 'object') fail(`entry "${key}" is not an object`);
    const dtype = v!.dtype;
    if (typeof dtype !== 'string' || !ELEMENT_BYTES[dtype]) fail(`tensor "${key}" has unsupported dtype ${JSON.stringify(dtype)}`);
    const shape = v!.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`tensor "${key}" has an invalid shape ${JSON.stringify(shape)}`);
    const offsets = v!.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      fail(`tensor "${key}" has invalid data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end || end > dataBytes) fail(`tensor "${key}" data_offsets [${begin}, ${end}] lie outside the ${dataBytes}-byte data region (truncated?)`);
    const expected = elementCount(shape as number[]) * ELEMENT_BYTES[dtype as string];
    if (end - begin !== expected) {
      fail(`tensor "${key}" (${dtype} [${(shape as number[]).join(', ')}]) needs ${expected} bytes but its data_offsets span ${end - begin}`);
    }
    entries.set(key, { key, dtype: dtype as string, shape: [...(shape as number[])], offset: dataStart + begin, byteLength: end - begin });
  }
  const sorted = [...entries.values()].filter((e) => e.byteLength > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    if (sorted[i].offset < prev.offset + prev.byteLength) fail(`tensors "${prev.key}" and "${sorted[i].key}" overlap`);
  }
  return { entries, metadata };
}

class SafetensorsFile implements TensorFile {
  readonly format = 'safetensors';

  constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly sizeBytes: number,
    readonly entries: ReadonlyMap<string, TensorEntry>,
    readonly metadata: Readonly<Record<string, string>>,
  ) {}

  async readFloat32(key: string): Promise<Float32Array> {
    const entry = this.entries.get(key);
    if (!entry) throw new WeightsFileError(this.path, `has no tensor "${key}"`);
    const bytes = new Uint8Array(entry.byteLength);
    let got = 0;
    while (got < entry.byteLength) {
      const { bytesRead } = await this.fh.read(bytes, got, entry.byteLength - got, entry.offset + got);
      if (bytesRead === 0) throw new WeightsFileError(this.path, `tensor "${key}" is cut short at byte ${entry.offset + got} (the file is truncated)`);
      got += bytesRead;
    }
    return decodeToFloat32(bytes, entry.dtype);
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
