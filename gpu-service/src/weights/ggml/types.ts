/**
 * ggml tensor types as GGUF stores them (ggml `include/ggml.h` enum ggml_type; block sizes from
 * `src/ggml-common.h` and gguf-py `gguf/constants.py` GGML_QUANT_SIZES). A type packs `blockSize` values into
 * `typeSize` bytes; a tensor's rows (its innermost axis, ne[0]) are a whole number of blocks.
 */
import { decodeToFloat32 } from '../decode';
import {
  dequantizeQ2_K,
  dequantizeQ3_K,
  dequantizeQ4_0,
  dequantizeQ4_1,
  dequantizeQ4_K,
  dequantizeQ5_0,
  dequantizeQ5_1,
  dequantizeQ5_K,
  dequantizeQ6_K,
  dequantizeQ8_0,
  dequantizeQ8_K,
  type Dequantizer,
} from './dequantize';

/** A ggml type this reader decodes. */
export interface GgmlType {
  /** ggml_type enum value. */
  readonly id: number;
  /** ggml's name (`ggml_type_name`): `F32`, `Q4_K`, … */
  readonly name: string;
  /** Values per block (1 for plain element types). */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly typeSize: number;
  /** Whether the type is a block quantization (as opposed to a plain float or integer element type). */
  readonly quantized: boolean;
  /** Decode whole blocks to float32. */
  readonly decode: Dequantizer;
}

/** Plain element types decode like the safetensors dtypes of the same name. */
function plain(id: number, name: string, bytes: number): GgmlType {
  return { id, name, blockSize: 1, typeSize: bytes, quantized: false, decode: (src, out) => out.set(decodeToFloat32(src, name)) };
}

function quant(id: number, name: string, blockSize: number, typeSize: number, decode: Dequantizer): GgmlType {
  return { id, name, blockSize, typeSize, quantized: true, decode };
}

/** The ggml types this reader decodes, by ggml_type id. */
export const GGML_TYPES: ReadonlyMap<number, GgmlType> = new Map(
  [
    plain(0, 'F32', 4),
    plain(1, 'F16', 2),
    quant(2, 'Q4_0', 32, 18, dequantizeQ4_0),
    quant(3, 'Q4_1', 32, 20, dequantizeQ4_1),
    quant(6, 'Q5_0', 32, 22, dequantizeQ5_0),
    quant(7, 'Q5_1', 32, 24, dequantizeQ5_1),
    quant(8, 'Q8_0', 32, 34, dequantizeQ8_0),
    quant(10, 'Q2_K', 256, 84, dequantizeQ2_K),
    quant(11, 'Q3_K', 256, 110, dequantizeQ3_K),
    quant(12, 'Q4_K', 256, 144, dequantizeQ4_K),
    quant(13, 'Q5_K', 256, 176, dequantizeQ5_K),
    quant(14, 'Q6_K', 256, 210, dequantizeQ6_K),
    quant(15, 'Q8_K', 256, 292, dequantizeQ8_K),
    plain(24, 'I8', 1),
    plain(25, 'I16', 2),
    plain(26, 'I32', 4),
    plain(27, 'I64', 8),
    plain(28, 'F64', 8),
    plain(30, 'BF16', 2),
  ].map((t) => [t.id, t]),
);

/**
 * Names of the ggml types that exist but are not decoded here (so a file using one is refused by name):
 * Q8_1 (a dot-product intermediate ggml itself never dequantizes), the i-quants with their codebooks, the
 * ternary and FP4 types.
 */
export const UNSUPPORTED_GGML_TYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [4, 'Q4_2 (removed from ggml)'],
  [5, 'Q4_3 (removed from ggml)'],
  [9, 'Q8_1'],
  [16, 'IQ2_XXS'],
  [17, 'IQ2_XS'],
  [18, 'IQ3_XXS'],
  [19, 'IQ1_S'],
  [20, 'IQ4_NL'],
  [21, 'IQ3_S'],
  [22, 'IQ2_S'],
  [23, 'IQ4_XS'],
  [29, 'IQ1_M'],
  [31, 'Q4_0_4_4 (removed from GGUF)'],
  [32, 'Q4_0_4_8 (removed from GGUF)'],
  [33, 'Q4_0_8_8 (removed from GGUF)'],
  [34, 'TQ1_0'],
  [35, 'TQ2_0'],
  [36, 'IQ4_NL_4_4 (removed from GGUF)'],
  [37, 'IQ4_NL_4_8 (removed from GGUF)'],
  [38, 'IQ4_NL_8_8 (removed from GGUF)'],
  [39, 'MXFP4'],
  [40, 'NVFP4'],
  [41, 'Q1_0'],
  [42, 'Q2_0'],
]);

/** The decoded type names, for error messages. */
export function supportedGgmlTypeNames(): string {
  return [...GGML_TYPES.values()].map((t) => t.name).join(', ');
}

/** The ggml type named `name` (case-sensitive ggml spelling), if decoded here. */
export function ggmlTypeByName(name: string): GgmlType | undefined {
  for (const t of GGML_TYPES.values()) if (t.name === name) return t;
  return undefined;
}
