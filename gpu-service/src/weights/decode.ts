/**
 * Decoding of stored element types to float32: IEEE half (F16), bfloat16 (BF16), float8 (E4M3FN, E5M2),
 * F64 and the integer types. Formats per the safetensors spec (huggingface/safetensors, `Dtype`) and
 * PyTorch's float8 definitions (`torch.float8_e4m3fn`: no infinities, NaN = S.1111.111; `float8_e5m2`:
 * IEEE-like).
 */

/** float16 bit pattern → float32 value, for all 65,536 patterns (built once, 256 KiB). */
let halfTable: Float32Array | undefined;

export function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    table[h] = exp === 0 ? sign * mant * 2 ** -24 : exp === 0x1f ? (mant ? NaN : sign * Infinity) : sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  halfTable = table;
  return table;
}

function byteTable(decode: (b: number) => number): Float32Array {
  const t = new Float32Array(256);
  for (let b = 0; b < 256; b++) t[b] = decode(b);
  return t;
}

/** float8 e4m3fn: bias 7, no infinities, only S.1111.111 is NaN. */
const E4M3 = byteTable((b) => {
  const sign = b & 0x80 ? -1 : 1;
  const exp = (b >>> 3) & 0xf;
  const mant = b & 0x7;
  if (exp === 0xf && mant === 0x7) return NaN;
  return exp === 0 ? sign * mant * 2 ** -9 : sign * (1 + mant / 8) * 2 ** (exp - 7);
});

/** float8 e5m2: bias 15, IEEE infinities and NaNs (the top byte of a float16). */
const E5M2 = byteTable((b) => halfToFloatTable()[b << 8]);

/** Bytes per element of the element types `decodeToFloat32` understands (safetensors spelling). */
export const ELEMENT_BYTES: Readonly<Record<string, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  F8_E4M3: 1,
  F8_E5M2: 1,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/**
 * Decode little-endian stored elements to float32.
 * @param bytes the tensor's stored bytes (any alignment).
 * @param dtype safetensors element type name (see ELEMENT_BYTES).
 * @returns a new Float32Array of bytes.length / ELEMENT_BYTES[dtype] values.
 * @throws Error for an element type not in ELEMENT_BYTES.
 */
export function decodeToFloat32(bytes: Uint8Array, dtype: string): Float32Array {
  const size = ELEMENT_BYTES[dtype];
  if (!size) throw new Error(`element type ${dtype} is not supported (supported: ${Object.keys(ELEMENT_BYTES).join(', ')})`);
  const n = bytes.length / size;
  const out = new Float32Array(n);
  // Copy into an aligned buffer once so typed views can be used.
  const aligned = bytes.byteOffset % 8 === 0 ? bytes : Uint8Array.from(bytes);
  const buf = aligned.buffer;
  const off = aligned.byteOffset;
  switch (dtype) {
    case 'F32':
      out.set(new Float32Array(buf, off, n));
      break;
    case 'F64': {
      const src = new Float64Array(buf, off, n);
      for (let i = 0; i < n; i++) out[i] = src[i];
      break;
    }
    case 'F16': {
      const table = halfToFloatTable();
      const src = new Uint16Array(buf, off, n);
      for (let i = 0; i < n; i++) out[i] = table[src[i]];
      break;
    }
    case 'BF16': {
      const src = new Uint16Array(buf, off, n);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = src[i] << 16;
      break;
    }
    case 'F8_E4M3':
      for (let i = 0; i < n; i++) out[i] = E4M3[aligned[i]];
      break;
    case 'F8_E5M2':
      for (let i = 0; i < n; i++) out[i] = E5M2[aligned[i]];
      break;
    case 'I64': {
      const src = new BigInt64Array(buf, off, n);
      for (let i = 0; i < n; i++) out[i] = Number(src[i]);
      break;
    }
    case 'I32':
      out.set(new Int32Array(buf, off, n));
      break;
    case 'I16':
      out.set(new Int16Array(buf, off, n));
      break;
    case 'I8':
      out.set(new Int8Array(buf, off, n));
      break;
    case 'U8':
    case 'BOOL':
      out.set(aligned.subarray(0, n));
      break;
  }
  return out;
}

/** Decode float16 bit patterns (Uint16Array) to float32 with the shared table. */
export function halfBitsToFloat32(bits: Uint16Array): Float32Array {
  const table = halfToFloatTable();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]];
  return out;
}
