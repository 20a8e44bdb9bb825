/**
 * An ONNX graph under construction, for the networks the checkpoint engine builds from weights files.
 *
 * Weights are *lazy* initializers: the builder records a name, dims and a loader, and only `save()` pulls
 * each tensor (one at a time), converts it to the graph's float type and appends it to the external-data file
 * beside model.onnx (ONNX external-data format, 4 KiB aligned for mmap). So building the graph of a
 * multi-gigabyte network holds one tensor in memory at a time, and the protobuf stays small (far under its
 * 2 GiB limit).
 *
 * Float type: a graph computes in `float32` or `float16` (`floatType`); every float input, output, weight
 * and constant is stored in that type. Layers that need more precision cast up themselves (graphs/layers.ts).
 *
 * Initializer names: weights are named by the checkpoint key they come from, so later weight patches
 * (LoRA) can find their targets; `weights()` lists them with their dims.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { float32ToFloat16 } from '../onnx/float16';

const { onnx } = onnxProto;

/** ONNX TensorProto element types used by the builders. */
export const DataType = { FLOAT: 1, UINT8: 2, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10 } as const;
export type DataTypeCode = (typeof DataType)[keyof typeof DataType];

/** The float type a graph computes in. */
export type FloatType = 'float32' | 'float16';

/** A dimension: fixed size, or a symbolic name (dim_param). */
export type Dim = number | string;

/**
 * Attribute values: integer → INT, non-integer → FLOAT, `{ float }` → FLOAT (for integral floats such as
 * alpha 1.0), string → STRING, number[] → INTS, `{ floats }` → FLOATS.
 */
export type AttributeValue = number | string | readonly number[] | { float: number } | { floats: readonly number[] };

/** Opset of the default domain (LayerNormalization needs 17). */
export const GRAPH_OPSET = 17;
/** onnxruntime's contrib-op domain (MultiHeadAttention, GroupNorm, …). */
export const MS_DOMAIN = 'com.microsoft';

/** A weight declared in the graph: its initializer name, dims and where its values come from. */
export interface LazyWeight {
  name: string;
  dims: number[];
  /** float32 values, row-major in `dims`. */
  load: () => Promise<Float32Array>;
  /** The stored type when it is not the graph's (a float32 weight in a float16 graph). */
  type?: FloatType;
  /**
   * A weight stored as given bytes of another element type (MatMulNBits' packed uint8 weights and their
   * scales): `load` is then unused.
   */
  raw?: { dataType: DataTypeCode; load: () => Promise<Uint8Array> };
}

/** Bytes per element of the types a raw weight may have. */
const RAW_ELEMENT_BYTES: Partial<Record<DataTypeCode, number>> = { [DataType.UINT8]: 1, [DataType.FLOAT]: 4, [DataType.FLOAT16]: 2 };

/** What save() wrote. */
export interface SavedGraph {
  /** Path of model.onnx. */
  modelPath: string;
  /** Bytes of model.onnx plus its external data. */
  bytes: number;
}

const EXTERNAL_ALIGNMENT = 4096;

export class OnnxGraph {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly inline: onnxProto.onnx.ITensorProto[] = [];
  private readonly lazy: LazyWeight[] = [];
  private readonly names = new Set<string>();
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly domains = new Set<string>();
  private counter = 0;
  /** ONNX element type code of floats in this graph. */
  readonly floatCode: DataTypeCode;

  constructor(
    readonly name: string,
    readonly floatType: FloatType = 'float32',
  ) {
    this.floatCode = floatType === 'float16' ? DataType.FLOAT16 : DataType.FLOAT;
  }

  /** A fresh value name starting with `hint`. */
  fresh(hint: string): string {
    this.counter += 1;
    return `${hint}__${this.counter}`;
  }

  /** Declare a graph input; returns its name. */
  input(name: string, type: DataTypeCode, dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  /** Declare a float input (the graph's float type). */
  floatInput(name: string, dims: readonly Dim[]): string {
    return this.input(name, this.floatCode, dims);
  }

  /** Declare graph output `name` carrying `value` (an Identity node renames it). */
  output(name: string, value: string, type: DataTypeCode, dims: readonly Dim[]): void {
    this.node('Identity', [value], {}, { outputs: [name] });
    this.outputs.push(valueInfo(name, type, dims));
  }

  /** Declare a float output (the graph's float type). */
  floatOutput(name: string, value: string, dims: readonly Dim[]): void {
    this.output(name, value, this.floatCode, dims);
  }

  /**
   * Add a node; returns the name of its first output (`outputs` names them, or gives a count of fresh ones).
   * Use `nodeOutputs` for nodes with several outputs.
   */
  node(opType: string, inputs: readonly string[], attributes: Record<string, AttributeValue> = {}, opts: { domain?: string; outputs?: string[] | number } = {}): string {
    return this.nodeOutputs(opType, inputs, attributes, opts)[0];
  }

  /** Add a node and return all its output names. */
  nodeOutputs(opType: string, inputs: readonly string[], attributes: Record<string, AttributeValue> = {}, opts: { domain?: string; outputs?: string[] | number } = {}): string[] {
    const outs = Array.isArray(opts.outputs) ? opts.outputs : Array.from({ length: opts.outputs ?? 1 }, () => this.fresh(opType.toLowerCase()));
    if (opts.domain) this.domains.add(opts.domain);
    this.nodes.push({
      opType,
      domain: opts.domain ?? '',
      name: `${opType}_${this.nodes.length}`,
      input: [...inputs],
      output: outs,
      attribute: Object.entries(attributes).map(([key, value]) => attribute(key, value)),
    });
    return outs;
  }

  /**
   * A weight read lazily at save time, stored under `name` (the checkpoint key) in the graph's float type, or
   * in `opts.type` for a weight a float16 graph keeps in float32 (transformers' `_keep_in_fp32_modules`, e.g.
   * T5's `wo`). Declaring the same name twice returns the existing initializer.
   * @throws Error when `name` was declared before with another type.
   */
  weight(name: string, dims: readonly number[], load: () => Promise<Float32Array>, opts: { type?: FloatType } = {}): string {
    const type = opts.type && opts.type !== this.floatType ? opts.type : undefined;
    if (this.names.has(name)) {
      const existing = this.lazy.find((w) => w.name === name);
      if (existing && existing.type !== type) throw new Error(`weight ${name} is declared as ${existing.type ?? this.floatType} and ${type ?? this.floatType}`);
      return name;
    }
    this.names.add(name);
    this.lazy.push({ name, dims: [...dims], load, ...(type ? { type } : {}) });
    return name;
  }

  /**
   * A weight read lazily at save time as the stored bytes of `dataType` (uint8, float32 or float16), row-major
   * in `dims`: MatMulNBits' packed blocks and scales. Declaring the same name twice returns the existing one.
   * @throws Error for another data type, or (at save) a byte count that does not match `dims`.
   */
  rawWeight(name: string, dataType: DataTypeCode, dims: readonly number[], load: () => Promise<Uint8Array>): string {
    if (RAW_ELEMENT_BYTES[dataType] === undefined) throw new Error(`weight ${name}: raw data type ${dataType} is not supported`);
    if (this.names.has(name)) return name;
    this.names.add(name);
    this.lazy.push({ name, dims: [...dims], load: () => Promise.reject(new Error('raw weight')), raw: { dataType, load } });
    return name;
  }

  /** A small float constant stored inline in the graph's float type; returns its name. */
  floatConstant(hint: string, dims: readonly number[], values: ArrayLike<number>): string {
    const name = this.fresh(hint);
    this.inline.push({ name, dataType: this.floatCode, dims: [...dims], rawData: floatBytes(values, this.floatType) });
    return name;
  }

  /** A small float32 constant (kept float32 whatever the graph's type: for upcast sections). */
  float32Constant(hint: string, dims: readonly number[], values: ArrayLike<number>): string {
    const name = this.fresh(hint);
    this.inline.push({ name, dataType: DataType.FLOAT, dims: [...dims], rawData: floatBytes(values, 'float32') });
    return name;
  }

  /** An int64 constant (shapes, axes, indices); returns its name. */
  int64Constant(hint: string, dims: readonly number[], values: readonly number[]): string {
    const name = this.fresh(hint);
    const bytes = new Uint8Array(values.length * 8);
    const view = new DataView(bytes.buffer);
    values.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
    this.inline.push({ name, dataType: DataType.INT64, dims: [...dims], rawData: bytes });
    return name;
  }

  /** A 1-D int64 constant. */
  ints(hint: string, values: readonly number[]): string {
    return this.int64Constant(hint, [values.length], values);
  }

  /** The weights declared so far (name and dims), in declaration order. */
  weights(): ReadonlyArray<Pick<LazyWeight, 'name' | 'dims'>> {
    return this.lazy.map(({ name, dims }) => ({ name, dims }));
  }

  /**
   * The encoded ModelProto of a graph without lazy weights (small helper graphs run from memory).
   * @throws Error when the graph has lazy weights (those need save()).
   */
  toBytes(): Uint8Array {
    if (this.lazy.length > 0) throw new Error(`graph ${this.name} has lazy weights: use save()`);
    return onnx.ModelProto.encode(this.modelProto([...this.inline], {})).finish();
  }

  private modelProto(initializer: onnxProto.onnx.ITensorProto[], opts: { docString?: string; metadata?: Record<string, string> }): onnxProto.onnx.ModelProto {
    return onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'image-api checkpoint engine',
      producerVersion: '1',
      docString: opts.docString ?? '',
      opsetImport: [{ domain: '', version: GRAPH_OPSET }, ...[...this.domains].map((domain) => ({ domain, version: 1 }))],
      metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: { name: this.name, node: this.nodes, initializer, input: this.inputs, output: this.outputs },
    });
  }

  /**
   * Write `<dir>/<file>` and `<dir>/<file>_data` (the weights), pulling each lazy weight once.
   * @throws the loader's error (the files written so far are the caller's to remove: the conversion cache
   *         writes into a temporary folder and renames it only on success).
   */
  async save(
    dir: string,
    file = 'model.onnx',
    opts: { docString?: string; metadata?: Record<string, string>; onWeight?: (done: number, total: number) => void } = {},
  ): Promise<SavedGraph> {
    await mkdir(dir, { recursive: true });
    const dataName = `${file}_data`;
    const stream = createWriteStream(join(dir, dataName));
    let offset = 0;
    const write = (chunk: Uint8Array) =>
      new Promise<void>((resolve, reject) => {
        stream.write(chunk, (err) => (err ? reject(err) : resolve()));
      });
    const external: onnxProto.onnx.ITensorProto[] = [];
    try {
      for (const w of this.lazy) {
        const expected = w.dims.reduce((a, b) => a * b, 1);
        const type = w.type ?? this.floatType;
        let bytes: Uint8Array;
        if (w.raw) {
          bytes = await w.raw.load();
          if (bytes.length !== expected * RAW_ELEMENT_BYTES[w.raw.dataType]!) throw new Error(`weight ${w.name}: ${bytes.length} bytes for dims [${w.dims.join(', ')}]`);
        } else {
          const values = await w.load();
          if (values.length !== expected) throw new Error(`weight ${w.name}: ${values.length} values for dims [${w.dims.join(', ')}]`);
          bytes = floatBytes(values, type);
        }
        const padded = Math.ceil(offset / EXTERNAL_ALIGNMENT) * EXTERNAL_ALIGNMENT;
        if (padded > offset) await write(new Uint8Array(padded - offset));
        await write(bytes);
        external.push({
          name: w.name,
          dataType: w.raw ? w.raw.dataType : type === 'float16' ? DataType.FLOAT16 : DataType.FLOAT,
          dims: w.dims,
          dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
          externalData: [
            { key: 'location', value: dataName },
            { key: 'offset', value: String(padded) },
            { key: 'length', value: String(bytes.length) },
          ],
        });
        offset = padded + bytes.length;
        opts.onWeight?.(external.length, this.lazy.length);
      }
    } finally {
      await new Promise<void>((resolve, reject) => stream.end((err?: Error | null) => (err ? reject(err) : resolve())));
    }
    const bytes = onnx.ModelProto.encode(this.modelProto([...this.inline, ...external], opts)).finish();
    const modelPath = join(dir, file);
    await writeFile(modelPath, bytes);
    return { modelPath, bytes: bytes.length + offset };
  }
}

function floatBytes(values: ArrayLike<number>, type: FloatType): Uint8Array {
  if (type === 'float16') {
    const bits = float32ToFloat16(values);
    return new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength);
  }
  const f = values instanceof Float32Array ? values : Float32Array.from(values);
  return new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
}

function valueInfo(name: string, elemType: number, dims: readonly Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

function attribute(name: string, value: AttributeValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (typeof value === 'number') return Number.isInteger(value) ? { name, type: T.INT, i: value } : { name, type: T.FLOAT, f: value };
  if ('float' in value) return { name, type: T.FLOAT, f: value.float };
  if ('floats' in value) return { name, type: T.FLOATS, floats: [...value.floats] };
  return { name, type: T.INTS, ints: [...value] };
}
