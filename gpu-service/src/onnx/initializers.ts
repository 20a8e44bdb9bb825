/**
 * Read named initializers (weights) straight from an ONNX file with the onnx-proto protobuf classes, for
 * the few constants the pipeline needs outside a session run — e.g. the text encoder's final LayerNorm,
 * which clip_skip applies to an earlier hidden state (diffusers / AUTOMATIC1111 behaviour).
 * Handles float32 and float16 data stored inline (raw_data or float_data) or as ONNX external data.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import onnxProto from 'onnx-proto';
import { fromFloat16Bits } from './float16';

const { onnx } = onnxProto;
const FLOAT = 1;
const FLOAT16 = 10;

async function tensorValues(t: onnxProto.onnx.ITensorProto, modelDir: string): Promise<Float32Array> {
  let raw: Uint8Array | undefined = t.rawData && t.rawData.length ? t.rawData : undefined;
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    const entry = (k: string) => t.externalData?.find((e) => e.key === k)?.value;
    const file = await readFile(join(modelDir, entry('location') ?? ''));
    const offset = Number(entry('offset') ?? 0);
    const length = Number(entry('length') ?? file.length - offset);
    raw = file.subarray(offset, offset + length);
  }
  if (t.dataType === FLOAT) {
    if (raw) return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    return Float32Array.from(t.floatData ?? []);
  }
  if (t.dataType === FLOAT16) {
    const bits = raw ? new Uint16Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)) : Uint16Array.from(t.int32Data ?? []);
    return Float32Array.from(bits, (b) => fromFloat16Bits(b));
  }
  throw new Error(`initializer ${t.name}: unsupported element type ${t.dataType}`);
}

/**
 * The float values of the first initializer whose name ends with each of `suffixes` (in order).
 * @param onnxPath path of a model.onnx (external data is read from its folder).
 * @returns one Float32Array per suffix, or undefined when any is missing.
 * @throws Error when the file is not a readable ONNX model.
 */
export async function readInitializers(onnxPath: string, suffixes: string[]): Promise<Float32Array[] | undefined> {
  const model = onnx.ModelProto.decode(await readFile(onnxPath));
  const inits = model.graph?.initializer ?? [];
  const out: Float32Array[] = [];
  for (const suffix of suffixes) {
    const t = inits.find((i) => (i.name ?? '').endsWith(suffix));
    if (!t) return undefined;
    out.push(await tensorValues(t, dirname(onnxPath)));
  }
  return out;
}
