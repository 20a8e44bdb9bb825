/**
 * Linear layers whose GGUF weight stays quantized in the graph: onnxruntime's `com.microsoft.MatMulNBits` over
 * the re-packed ggml blocks (weights/ggml/matmul-nbits.ts) instead of a dequantized float initializer.
 *
 * `GGUF_KEEP_QUANTIZED` chooses (README "GGUF weights"):
 * - `1`: every Linear weight stored as Q4_0 or Q8_0 (the types MatMulNBits holds exactly) is kept quantized;
 * - `0`: every weight is dequantized to the graph's float type at conversion (the float32 reference path);
 * - `auto` (default): the measured choice, KEEP_QUANTIZED_AUTO (Q4_0 kept, Q8_0 dequantized).
 * Conv, norm and embedding weights, other ggml types, and tensors assembled from several stored ones (a key
 * map's fused qkv, a LoRA-patched weight) are always dequantized.
 */
import type { WeightRef } from '../weights/weight-set';
import type { GgufFile } from '../weights/gguf';
import { ggmlToMatMulNBits, MATMUL_NBITS_GGML_TYPES, type MatMulNBitsWeight } from '../weights/ggml/matmul-nbits';

/**
 * What `auto` keeps quantized: Q4_0 only. Measured in one run (README "GGUF weights", `npm run bench -- --only gguf`,
 * CPU provider, onnxruntime-node 1.30): Q4_0 kept runs a transformer step as fast as its float32 dequantized graph
 * with a third of the memory; Q8_0 kept halves the memory but its 8-bit float32-accumulating kernel is ~5× slower
 * per step, so Q8_0 is dequantized.
 */
export const KEEP_QUANTIZED_AUTO: ReadonlySet<string> = new Set(['Q4_0']);

/** The allowed values of GGUF_KEEP_QUANTIZED. */
export const KEEP_QUANTIZED_VALUES = ['auto', '0', '1'] as const;

/**
 * The ggml types whose Linear weights stay quantized in a graph of `floatType`: `true` = every exact type
 * (MATMUL_NBITS_GGML_TYPES), `false` = none, undefined = GGUF_KEEP_QUANTIZED (keepQuantizedFromEnv), where `auto`
 * applies to float32 graphs only: the choice was measured on the CPU provider, so float16 graphs (GPU providers)
 * keep dequantizing under `auto` until measured there (`1` keeps them quantized, with float16 scales).
 */
export function keptGgmlTypes(keepQuantized: boolean | undefined, floatType: 'float32' | 'float16' = 'float32', env: NodeJS.ProcessEnv = process.env): ReadonlySet<string> {
  if (keepQuantized === true) return MATMUL_NBITS_GGML_TYPES;
  if (keepQuantized === false) return new Set();
  const kept = keepQuantizedFromEnv(env);
  const isAuto = kept === KEEP_QUANTIZED_AUTO;
  return isAuto && floatType === 'float16' ? new Set() : kept;
}

/**
 * GGUF_KEEP_QUANTIZED read from `env` (unset = `auto`): the ggml types kept quantized.
 * @throws Error naming the variable and its allowed values for anything else.
 */
export function keepQuantizedFromEnv(env: NodeJS.ProcessEnv = process.env): ReadonlySet<string> {
  const v = (env.GGUF_KEEP_QUANTIZED ?? 'auto').trim().toLowerCase();
  if (v === '' || v === 'auto') return KEEP_QUANTIZED_AUTO;
  if (v === '1') return MATMUL_NBITS_GGML_TYPES;
  if (v === '0') return new Set();
  throw new Error(`GGUF_KEEP_QUANTIZED must be one of ${KEEP_QUANTIZED_VALUES.join(', ')}, got "${env.GGUF_KEEP_QUANTIZED}"`);
}

/**
 * The ggml type name of `ref` when it is a plain 2-D GGUF tensor [out, in] that MatMulNBits represents exactly
 * (Q4_0 / Q8_0, `in` a multiple of 32, viewed in its stored shape, not assembled); undefined otherwise.
 */
export function keepableGgmlType(ref: WeightRef): string | undefined {
  if (ref.assemble || ref.file.format !== 'gguf') return undefined;
  const entry = ref.file.entries.get(ref.key);
  if (!entry || !MATMUL_NBITS_GGML_TYPES.has(entry.dtype)) return undefined;
  if (ref.shape.length !== 2 || entry.shape.length !== 2 || entry.shape[0] !== ref.shape[0] || entry.shape[1] !== ref.shape[1]) return undefined;
  return ref.shape[1] % 32 === 0 ? entry.dtype : undefined;
}

/** Read and re-pack a keepable tensor (keepableGgmlType). @throws the file's read error */
export async function readMatMulNBits(ref: WeightRef): Promise<MatMulNBitsWeight> {
  const type = keepableGgmlType(ref);
  if (!type) throw new Error(`${ref.key} is not a Q4_0 / Q8_0 Linear weight`);
  const stored = await (ref.file as GgufFile).readStored(ref.key);
  return ggmlToMatMulNBits(type, stored, ref.shape[0], ref.shape[1]);
}
