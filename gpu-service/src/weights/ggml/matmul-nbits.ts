/**
 * ggml block quantizations re-packed, without changing a value, into the inputs of onnxruntime's contrib op
 * `com.microsoft.MatMulNBits` (onnxruntime `docs/ContribOperators.md`; CPU kernel
 * `contrib_ops/cpu/quantization/matmul_nbits.cc`, onnxruntime-node 1.30): Y[..., N] = A[..., K] · Wᵀ with
 *
 *   W[n, k] = (q[n, k] − zero_point) · scales[n, k / block_size]
 *   B: uint8 [N, k_blocks, block_size·bits/8], `bits`-wide unsigned q packed along K, the first element of a
 *      pair in the low bits of a byte; scales: [N, k_blocks] in A's type; no zero_points input = 2^(bits−1).
 *
 * ggml stores a Linear weight as PyTorch does, [out, in] row-major, with its blocks along `in` (ne[0]), which
 * is MatMulNBits' B layout with N = out, K = in. The mappings that are exact (ggml `src/ggml-common.h`,
 * `dequantize_row_*` in `src/ggml-quants.c`):
 *
 * - Q4_0 (block 32: half d, uint8 qs[16]; x[j] = (lo(qs[j]) − 8)·d, x[j+16] = (hi(qs[j]) − 8)·d): bits 4, block 32,
 *   default zero point 8, scale = d as float32. Only the nibble order differs: ggml puts elements j and j+16 in
 *   byte j, MatMulNBits elements 2i and 2i+1 in byte i.
 * - Q8_0 (block 32: half d, int8 qs[32]; x[j] = qs[j]·d): bits 8, block 32, default zero point 128,
 *   q = qs + 128 (the byte with its top bit flipped), scale = d.
 *
 * A half d is exactly a float32 (and a float16), and (q − z)·d is exact in float32 (11 × 8 significant bits), so
 * the op's dequantized weights are bit-identical to ggml's. Q4_1 / Q5_1 (x = d·q + m) would need the zero
 * point −m/d, which is not exact in general; Q5_0 has no 5-bit packing here; the K-quants use sub-block scales
 * on 6 bits, blocks of 16 scaled by a second level: none maps exactly, so they stay dequantized.
 */
import { halfToFloatTable } from '../decode';

/** The MatMulNBits inputs and attributes of one [N, K] weight. */
export interface MatMulNBitsWeight {
  bits: 4 | 8;
  blockSize: number;
  /** N (output features). */
  n: number;
  /** K (input features). */
  k: number;
  /** uint8 [N, K / blockSize, blockSize·bits/8]. */
  b: Uint8Array;
  /** float32 [N, K / blockSize]: ggml's per-block d. */
  scales: Float32Array;
}

/** ggml type names that MatMulNBits represents exactly (see the module comment). */
export const MATMUL_NBITS_GGML_TYPES: ReadonlySet<string> = new Set(['Q4_0', 'Q8_0']);

const BLOCK = 32;

/**
 * Re-pack a stored ggml tensor [n, k] (rows of k values, k / 32 blocks each) as MatMulNBits inputs.
 * @param type ggml type name, one of MATMUL_NBITS_GGML_TYPES.
 * @param stored the tensor's bytes as GGUF stores them (GgufFile.readStored).
 * @throws Error for another type, a k that is not a whole number of blocks, or a byte count that does not match.
 */
export function ggmlToMatMulNBits(type: string, stored: Uint8Array, n: number, k: number): MatMulNBitsWeight {
  if (!MATMUL_NBITS_GGML_TYPES.has(type)) throw new Error(`ggml type ${type} has no exact MatMulNBits form`);
  if (k % BLOCK !== 0) throw new Error(`a ${type} row of ${k} values is not a whole number of ${BLOCK}-value blocks`);
  const blocks = n * (k / BLOCK);
  const typeSize = type === 'Q4_0' ? 18 : 34;
  if (stored.length !== blocks * typeSize) throw new Error(`${type} [${n}, ${k}] needs ${blocks * typeSize} bytes, got ${stored.length}`);
  const half = halfToFloatTable();
  const scales = new Float32Array(blocks);
  if (type === 'Q8_0') {
    const b = new Uint8Array(blocks * BLOCK);
    for (let i = 0; i < blocks; i++) {
      const at = i * typeSize;
      scales[i] = half[stored[at] | (stored[at + 1] << 8)];
      for (let j = 0; j < BLOCK; j++) b[i * BLOCK + j] = stored[at + 2 + j] ^ 0x80;
    }
    return { bits: 8, blockSize: BLOCK, n, k, b, scales };
  }
  const b = new Uint8Array(blocks * (BLOCK / 2));
  for (let i = 0; i < blocks; i++) {
    const at = i * typeSize;
    scales[i] = half[stored[at] | (stored[at + 1] << 8)];
    const qs = at + 2;
    const out = i * (BLOCK / 2);
    // element e: ggml byte (e mod 16), low nibble for e < 16; MatMulNBits byte e/2, low nibble for even e.
    for (let p = 0; p < BLOCK / 2; p++) {
      const e0 = 2 * p;
      const e1 = 2 * p + 1;
      const q0 = e0 < 16 ? stored[qs + e0] & 0x0f : stored[qs + e0 - 16] >> 4;
      const q1 = e1 < 16 ? stored[qs + e1] & 0x0f : stored[qs + e1 - 16] >> 4;
      b[out + p] = q0 | (q1 << 4);
    }
  }
  return { bits: 4, blockSize: BLOCK, n, k, b, scales };
}
