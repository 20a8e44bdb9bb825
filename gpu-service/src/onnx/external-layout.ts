/**
 * Where each initializer of an ONNX file with external data lives: its dims, element type and the byte range
 * in which external-data file. Read from the ModelProto (small: graphs of the checkpoint engine keep every
 * weight outside it), so weight patches (LoRA) can rewrite tensors in a copy of the data without re-reading
 * or re-encoding the graph.
 */
import { readFile } from 'node:fs/promises';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/** One externally stored initializer. */
export interface ExternalTensor {
  name: string;
  dims: number[];
  /** onnx.TensorProto.DataType (1 float32, 10 float16). */
  dataType: number;
  /** External-data file name, relative to the model's folder. */
  location: string;
  offset: number;
  length: number;
}

/**
 * The externally stored initializers of `modelPath`, by name.
 * @throws Error when the file is not an ONNX model.
 */
export async function readExternalLayout(modelPath: string): Promise<Map<string, ExternalTensor>> {
  const model = onnx.ModelProto.decode(await readFile(modelPath));
  const out = new Map<string, ExternalTensor>();
  for (const t of model.graph?.initializer ?? []) {
    if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue;
    const entry = (k: string) => t.externalData?.find((e) => e.key === k)?.value;
    out.set(t.name ?? '', {
      name: t.name ?? '',
      dims: (t.dims ?? []).map(Number),
      dataType: t.dataType ?? 0,
      location: entry('location') ?? '',
      offset: Number(entry('offset') ?? 0),
      length: Number(entry('length') ?? 0),
    });
  }
  return out;
}
