/**
 * Sessions of a built model's graphs with some weights replaced, without rebuilding or re-reading anything:
 * the graph file is the same; its external data is given from memory — a copy of the base weights (read from
 * disk once per model and kept) with the patched tensors rewritten in place. The ONNX layout (external-layout.ts)
 * says where each initializer's bytes are.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeToFloat32 } from '../weights/decode';
import { float32ToFloat16 } from '../onnx/float16';
import { readExternalLayout, type ExternalTensor } from '../onnx/external-layout';
import { OnnxModel, type SessionOptions } from '../onnx/session';
import type { WeightPatch } from './lora-patch';

/** One graph of a model with its base weights in memory. */
export interface BaseGraph {
  /** Folder of the graph inside the model (`unet`, `text_encoder`). */
  folder: string;
  modelPath: string;
  modelBytes: Uint8Array;
  layout: Map<string, ExternalTensor>;
  /** External-data file name → its bytes. */
  data: Map<string, Buffer>;
  bytes: number;
}

/**
 * Read one graph of a built model (the graph file, its layout and its external data) into memory.
 * @param dir the model's folder (a conversion-cache entry).
 */
export async function loadBaseGraph(dir: string, folder: string): Promise<BaseGraph> {
  const modelPath = join(dir, folder, 'model.onnx');
  const [modelBytes, layout] = await Promise.all([readFile(modelPath), readExternalLayout(modelPath)]);
  const data = new Map<string, Buffer>();
  for (const t of layout.values()) if (!data.has(t.location)) data.set(t.location, await readFile(join(dir, folder, t.location)));
  const bytes = modelBytes.length + [...data.values()].reduce((n, b) => n + b.length, 0);
  return { folder, modelPath, modelBytes, layout, data, bytes };
}

const FLOAT = 1;
const FLOAT16 = 10;

/**
 * Open a session of `base` with `patches` (those of this graph) added to its weights.
 * @returns the session and the patched buffers it reads (keep them alive with it) and their size in bytes.
 * @throws Error when a patch names an initializer the graph does not have.
 */
export async function openPatchedGraph(base: BaseGraph, patches: readonly WeightPatch[], sessionOptions: SessionOptions): Promise<{ session: OnnxModel; buffers: Buffer[]; bytes: number }> {
  const copies = new Map<string, Buffer>();
  const copyOf = (location: string) => {
    let c = copies.get(location);
    if (!c) {
      c = Buffer.allocUnsafeSlow(base.data.get(location)!.length);
      base.data.get(location)!.copy(c);
      copies.set(location, c);
    }
    return c;
  };
  for (const p of patches) {
    const t = base.layout.get(p.target.initializer);
    if (!t) throw new Error(`${base.folder}: no initializer ${p.target.initializer} to patch`);
    const buf = copyOf(t.location);
    const region = buf.subarray(t.offset, t.offset + t.length);
    const cols = t.dims.slice(1).reduce((a, b) => a * b, 1);
    const start = (p.target.rows?.[0] ?? 0) * cols;
    if (t.dataType === FLOAT) {
      const w = new Float32Array(region.buffer, region.byteOffset, region.length / 4);
      for (let k = 0; k < p.delta.length; k++) w[start + k] += p.delta[k];
    } else if (t.dataType === FLOAT16) {
      const w = new Uint16Array(region.buffer, region.byteOffset, region.length / 2);
      const slice = w.subarray(start, start + p.delta.length);
      const values = decodeToFloat32(new Uint8Array(slice.buffer, slice.byteOffset, slice.byteLength), 'F16');
      for (let k = 0; k < values.length; k++) values[k] += p.delta[k];
      slice.set(float32ToFloat16(values));
    } else {
      throw new Error(`${base.folder}: ${p.target.initializer} has element type ${t.dataType}, not a float weight`);
    }
  }
  const externalData = [...base.data.keys()].map((location) => ({ path: location, data: copies.get(location) ?? base.data.get(location)! }));
  const session = await OnnxModel.open(base.modelPath, sessionOptions, { model: base.modelBytes, externalData });
  const buffers = [...copies.values()];
  return { session, buffers, bytes: buffers.reduce((n, b) => n + b.length, 0) };
}
