/**
 * A small ONNX graph builder over the `onnx-proto` protobuf classes: declare inputs, outputs,
 * initializers and nodes, then encode a ModelProto (optionally with ONNX external data).
 *
 * Float handling: graphs compute in float32. In float16 mode (`{ float16: true }`) every float
 * input/output and every float initializer is float16; `floatInput` casts inputs up to float32,
 * `floatOutput` casts results back down, and `floatConstant` stores float16 and casts up — so the
 * file is a genuine float16 model (like an fp16 Optimum export) while the maths stays accurate.
 */
import onnxProto from 'onnx-proto';
import { toFloat16Bits as float32ToFloat16Bits } from '../../gpu-service/src/onnx/float16';
import { TINY_OPSET } from './constants';

const { onnx } = onnxProto;
type AttributeValue = number | string | readonly number[];

/** ONNX element types used here (onnx.TensorProto.DataType). */
export const ELEM = { FLOAT: 1, INT32: 6, INT64: 7, FLOAT16: 10 } as const;
/** One of the element types in ELEM. */
export type ElemType = (typeof ELEM)[keyof typeof ELEM];

/** A dimension: a fixed size or a symbolic name (dim_param, e.g. "batch"). */
export type Dim = number | string;

/** Options of `OnnxGraphBuilder.encode`. */
export interface EncodeOptions {
  /** Store initializers of at least `minBytes` bytes in this file (beside model.onnx), ONNX external-data format. */
  externalData?: { location: string; minBytes: number };
  /** ModelProto doc_string. */
  docString?: string;
  /** ModelProto metadata_props. */
  metadata?: Record<string, string>;
}

/** The encoded model: `model` bytes, and `externalData` bytes when requested and non-empty. */
export interface EncodedModel {
  model: Uint8Array;
  externalData?: Uint8Array;
}

/** Alignment of tensors inside an external-data file (the ONNX Python helper aligns to 4096 for mmap). */
const EXTERNAL_ALIGNMENT = 4096;

/** Builds one ONNX graph; see the module docstring for float16 mode. */
export class OnnxGraphBuilder {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private counter = 0;
  /** Element type of float inputs, outputs and initializers (FLOAT or FLOAT16). */
  readonly floatType: ElemType;

  constructor(
    private readonly name: string,
    options: { float16?: boolean } = {},
  ) {
    this.floatType = options.float16 ? ELEM.FLOAT16 : ELEM.FLOAT;
  }

  /** A fresh intermediate value name starting with `hint`. */
  fresh(hint: string): string {
    this.counter += 1;
    return `${hint}_${this.counter}`;
  }

  /** Declares a graph input of the given element type; returns its name. */
  input(name: string, elemType: ElemType, dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  /** Declares a float input (floatType) and returns the name of its float32 value. */
  floatInput(name: string, dims: readonly Dim[]): string {
    this.input(name, this.floatType, dims);
    return this.floatType === ELEM.FLOAT ? name : this.node('Cast', [name], { to: ELEM.FLOAT });
  }

  /** Declares a graph output whose value is produced under exactly this name. */
  output(name: string, elemType: ElemType, dims: readonly Dim[]): void {
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  /** Declares float output `name` (floatType) computed from the float32 value `value`. */
  floatOutput(name: string, value: string, dims: readonly Dim[]): void {
    this.node(this.floatType === ELEM.FLOAT ? 'Identity' : 'Cast', [value], this.floatType === ELEM.FLOAT ? {} : { to: this.floatType }, name);
    this.output(name, this.floatType, dims);
  }

  /**
   * Adds a node; returns the name of its (single) output: `outputName` or a fresh name.
   * Attribute values: integer → INT, non-integer number → FLOAT, string → STRING, number[] → INTS.
   */
  node(opType: string, inputs: readonly string[], attributes: Record<string, AttributeValue> = {}, outputName?: string): string {
    const out = outputName ?? this.fresh(opType.toLowerCase());
    this.nodes.push({
      opType,
      name: `${opType}_${this.nodes.length}`,
      input: [...inputs],
      output: [out],
      attribute: Object.entries(attributes).map(([key, value]) => attribute(key, value)),
    });
    return out;
  }

  /** A float32 constant (stored as floatType; cast to float32 in float16 mode); returns the float32 value's name. */
  floatConstant(name: string, dims: readonly number[], values: ArrayLike<number>): string {
    this.addFloatInitializer(this.floatType === ELEM.FLOAT ? name : `${name}_f16`, dims, values, this.floatType);
    return this.floatType === ELEM.FLOAT ? name : this.node('Cast', [`${name}_f16`], { to: ELEM.FLOAT }, name);
  }

  /** A float constant stored and used in floatType (e.g. a table gathered straight to a float16 output). */
  floatTypedConstant(name: string, dims: readonly number[], values: ArrayLike<number>): string {
    this.addFloatInitializer(name, dims, values, this.floatType);
    return name;
  }

  /** An int64 constant (shapes, axes, indices); returns its name. */
  int64Constant(name: string, dims: readonly number[], values: readonly number[]): string {
    const bytes = new Uint8Array(values.length * 8);
    const view = new DataView(bytes.buffer);
    values.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
    this.initializers.push({ name, dataType: ELEM.INT64, dims: [...dims], rawData: bytes });
    return name;
  }

  /** Encodes the ModelProto (IR version 8, default-domain opset TINY_OPSET). */
  encode(options: EncodeOptions = {}): EncodedModel {
    const external: Uint8Array[] = [];
    let offset = 0;
    const initializers = this.initializers.map((tensor) => {
      const raw = tensor.rawData as Uint8Array;
      if (!options.externalData || raw.length < options.externalData.minBytes) return tensor;
      const padded = Math.ceil(offset / EXTERNAL_ALIGNMENT) * EXTERNAL_ALIGNMENT;
      if (padded > offset) external.push(new Uint8Array(padded - offset));
      external.push(raw);
      const entry: onnxProto.onnx.ITensorProto = {
        ...tensor,
        rawData: null,
        dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
        externalData: [
          { key: 'location', value: options.externalData.location },
          { key: 'offset', value: String(padded) },
          { key: 'length', value: String(raw.length) },
        ],
      };
      offset = padded + raw.length;
      return entry;
    });
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'image-api scripts/tiny-model',
      producerVersion: '1',
      docString: options.docString ?? '',
      opsetImport: [{ domain: '', version: TINY_OPSET }],
      metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
    const bytes = onnx.ModelProto.encode(model).finish();
    if (external.length === 0) return { model: bytes };
    return { model: bytes, externalData: concat(external) };
  }

  private addFloatInitializer(name: string, dims: readonly number[], values: ArrayLike<number>, type: ElemType): void {
    let bytes: Uint8Array;
    if (type === ELEM.FLOAT16) {
      bytes = new Uint8Array(values.length * 2);
      const view = new DataView(bytes.buffer);
      for (let i = 0; i < values.length; i++) view.setUint16(i * 2, float32ToFloat16Bits(values[i]), true);
    } else {
      bytes = new Uint8Array(values.length * 4);
      const view = new DataView(bytes.buffer);
      for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i], true);
    }
    this.initializers.push({ name, dataType: type, dims: [...dims], rawData: bytes });
  }
}

function valueInfo(name: string, elemType: ElemType, dims: readonly Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, value: AttributeValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (typeof value === 'number') {
    return Number.isInteger(value) ? { name, type: T.INT, i: value } : { name, type: T.FLOAT, f: value };
  }
  return { name, type: T.INTS, ints: [...value] };
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
