/**
 * ggml's block quantizations decoded to float32 exactly as ggml does it: a transcription of ggml
 * `src/ggml-quants.c` `dequantize_row_*` over the block structs of `src/ggml-common.h`, which gguf-py's
 * `gguf/quants.py` `dequantize_blocks` restates in numpy (the fixtures' references use the latter). Every
 * intermediate that ggml keeps in a `float` is rounded to float32 here (Math.fround), in ggml's order of
 * operations and without fused multiply-adds, so the results are bit-identical to both.
 *
 * Each function decodes whole blocks: `src` holds n blocks of the type's byte size, `out` receives n × block
 * size values (blocks run along a row's innermost axis, consecutively). Scales are little-endian IEEE half
 * floats (`ggml_half`), except Q8_K's float32 `d`.
 */
import { halfToFloatTable } from '../decode';

/** Decodes `src` (whole blocks) into `out` (block size × block count values). */
export type Dequantizer = (src: Uint8Array, out: Float32Array) => void;

const fr = Math.fround;

function half(src: Uint8Array, at: number, table: Float32Array): number {
  return table[src[at] | (src[at + 1] << 8)];
}

/** int8 view of a byte. */
function i8(b: number): number {
  return (b << 24) >> 24;
}

/** block_q4_0 (18 bytes / 32 values): ggml_half d; uint8 qs[16]. x[j] = (lo(qs[j]) − 8)·d, x[j+16] = (hi(qs[j]) − 8)·d. */
export const dequantizeQ4_0: Dequantizer = (src, out) => {
  const t = halfToFloatTable();
  for (let b = 0, o = 0, y = 0; o < src.length; b++, o += 18, y += 32) {
    const d = half(src, o, t);
    for (let j = 0; j < 16; j++) {
      const q = src[o + 2 + j];
      out[y + j] = fr(((q & 0x0f) - 8) * d);
      out[y + j + 16] = fr(((q >> 4) - 8) * d);
    }
  }
};

/** block_q4_1 (20 bytes / 32 values): ggml_half d, m; uint8 qs[16]. x = q·d + m. */
export const dequantizeQ4_1: Dequantizer = (src, out) => {
  const t = halfToFloatTable();
  for (let o = 0, y = 0; o < src.length; o += 20, y += 32) {
    const d = half(src, o, t);
    const m = half(src, o + 2, t);
    for (let j = 0; j < 16; j++) {
      const q = src[o + 4 + j];
      out[y + j] = fr(fr((q & 0x0f) * d) + m);
      out[y + j + 16] = fr(fr((q >> 4) * d) + m);
    }
  }
};

/** block_q5_0 (22 bytes / 32 values): ggml_half d; uint8 qh[4] (5th bits, little-endian uint32); uint8 qs[16]. x = (q − 16)·d. */
export const dequantizeQ5_0: Dequantizer = (src, out) => {
  const t = halfToFloatTable();
  for (let o = 0, y = 0; o < src.length; o += 22, y += 32) {
    const d = half(src, o, t);
    const qh = (src[o + 2] | (src[o + 3] << 8) | (src[o + 4] << 16) | (src[o + 5] << 24)) >>> 0;
    for (let j = 0; j < 16; j++) {
      const xh0 = ((qh >>> j) << 4) & 0x10;
      const xh1 = (qh >>> (j + 12)) & 0x10;
      const q = src[o + 6 + j];
      out[y + j] = fr((((q & 0x0f) | xh0) - 16) * d);
      out[y + j + 16] = fr((((q >> 4) | xh1) - 16) * d);
    }
  }
};

/** block_q5_1 (24 bytes / 32 values): ggml_half d, m; uint8 qh[4]; uint8 qs[16]. x = q·d + m. */
export const dequantizeQ5_1: Dequantizer = (src, out) => {
  const t = halfToFloatTable();
  for (let o = 0, y = 0; o < src.length; o += 24, y += 32) {
    const d = half(src, o, t);
    const m = half(src, o + 2, t);
    const qh = (src[o + 4] | (src[o + 5] << 8) | (src[o + 6] << 16) | (src[o + 7] << 24)) >>> 0;
    for (let j = 0; j < 16; j++) {
      const xh0 = ((qh >>> j) << 4) & 0x10;
      const xh1 = (qh >>> (j + 12)) & 0x10;
      const q = src[o + 8 + j];
      out[y + j] = fr(fr(((q & 0x0f) | xh0) * d) + m);
      out[y + j + 16] = fr(fr(((q >> 4) | xh1) * d) + m);
    }
  }
};

/** block_q8_0 (34 bytes / 32 values): ggml_half d; int8 qs[32]. x = q·d. */
export const dequantizeQ8_0: Dequantizer = (src, out) => {
  const t = halfToFloatTable();
  for (let o = 0, y = 0; o < src.length; o += 34, y += 32) {
    const d = half(src, o, t);
    for (let j = 0; j < 32; j++) out[y + j] = fr(i8(src[o + 2 + j]) * d);
  }
};

/**
 * block_q2_K (84 bytes / 256 values): uint8 scales[16] (low nibble scale, high nibble min, per 16 values);
 * uint8 qs[64] (2-bit quants); ggml_half d, dmin. x = (d·sc)·q − (dmin·m).
 */
export const dequantizeQ2_K: Dequantizer = (src, out) => {
  const t = halfToFloatTable();
  let y = 0;
  for (let o = 0; o < src.length; o += 84) {
    const d = half(src, o + 80, t);
    const min = half(src, o + 82, t);
    let is = 0;
    for (let n = 0; n < 2; n++) {
      const q = o + 16 + 32 * n;
      for (let shift = 0; shift < 8; shift += 2) {
        for (let half16 = 0; half16 < 32; half16 += 16) {
          const sc = src[o + is++];
          const dl = fr(d * (sc & 0x0f));
          const ml = fr(min * (sc >> 4));
          for (let l = 0; l < 16; l++) out[y++] = fr(fr(dl * ((src[q + half16 + l] >> shift) & 3)) - ml);
        }
      }
    }
  }
};

/**
 * block_q3_K (110 bytes / 256 values): uint8 hmask[32] (high bits); uint8 qs[64] (low 2 bits); uint8 scales[12]
 * (16 6-bit scales, offset 32); ggml_half d. x = (d·(s − 32))·(q_low − (high bit clear ? 4 : 0)).
 */
export const dequantizeQ3_K: Dequantizer = (src, out) => {
  const t = halfToFloatTable();
  const scales = new Int32Array(16);
  let y = 0;
  for (let o = 0; o < src.length; o += 110) {
    const d = half(src, o + 108, t);
    const sc = o + 96;
    // The 16 scales: low 4 bits from bytes 0..7 (low nibbles, then high nibbles), high 2 bits from bytes 8..11.
    for (let s = 0; s < 16; s++) {
      const low = s < 8 ? src[sc + s] & 0x0f : src[sc + s - 8] >> 4;
      const high = (src[sc + 8 + (s & 3)] >> (2 * (s >> 2))) & 3;
      scales[s] = (low | (high << 4)) - 32;
    }
    let is = 0;
    let m = 1;
    for (let n = 0; n < 2; n++) {
      const q = o + 32 + 32 * n;
      for (let shift = 0; shift < 8; shift += 2) {
        for (let half16 = 0; half16 < 32; half16 += 16) {
          const dl = fr(d * scales[is++]);
          for (let l = 0; l < 16; l++) {
            const ql = (src[q + half16 + l] >> shift) & 3;
            const hm = src[o + half16 + l] & m ? 0 : 4;
            out[y++] = fr(dl * (ql - hm));
          }
        }
        m <<= 1;
      }
    }
  }
};

/** ggml `get_scale_min_k4`: the j-th 6-bit (scale, min) pair of a Q4_K / Q5_K super-block's 12 scale bytes at `at`. */
function scaleMinK4(src: Uint8Array, at: number, j: number): [number, number] {
  if (j < 4) return [src[at + j] & 63, src[at + j + 4] & 63];
  return [(src[at + j + 4] & 0x0f) | ((src[at + j - 4] >> 6) << 4), (src[at + j + 4] >> 4) | ((src[at + j] >> 6) << 4)];
}

/**
 * block_q4_K (144 bytes / 256 values): ggml_half d, dmin; uint8 scales[12] (8 6-bit scale/min pairs, one per 32
 * values); uint8 qs[128] (4-bit quants: 32 bytes give 32 values from the low nibbles, then 32 from the high).
 * x = (d·sc)·q − (dmin·m).
 */
export const dequantizeQ4_K: Dequantizer = (src, out) => {
  const t = halfToFloatTable();
  let y = 0;
  for (let o = 0; o < src.length; o += 144) {
    const d = half(src, o, t);
    const min = half(src, o + 2, t);
    for (let j = 0; j < 4; j++) {
      const [sc1, m1raw] = scaleMinK4(src, o + 4, 2 * j);
      const [sc2, m2raw] = scaleMinK4(src, o + 4, 2 * j + 1);
      const d1 = fr(d * sc1);
      const m1 = fr(min * m1raw);
      const d2 = fr(d * sc2);
      const m2 = fr(min * m2raw);
      const q = o + 16 + 32 * j;
      for (let l = 0; l < 32; l++) out[y++] = fr(fr(d1 * (src[q + l] & 0x0f)) - m1);
      for (let l = 0; l < 32; l++) out[y++] = fr(fr(d2 * (src[q + l] >> 4)) - m2);
    }
  }
};

/**
 * block_q5_K (176 bytes / 256 values): ggml_half d, dmin; uint8 scales[12] (as Q4_K); uint8 qh[32] (5th bits: bit
 * 2j for the j-th 64-value group's low nibbles, bit 2j+1 for its high nibbles); uint8 qs[128]. x = (d·sc)·q − (dmin·m).
 */
export const dequantizeQ5_K: Dequantizer = (src, out) => {
  const t = halfToFloatTable();
  let y = 0;
  for (let o = 0; o < src.length; o += 176) {
    const d = half(src, o, t);
    const min = half(src, o + 2, t);
    const qh = o + 16;
    for (let j = 0; j < 4; j++) {
      const [sc1, m1raw] = scaleMinK4(src, o + 4, 2 * j);
      const [sc2, m2raw] = scaleMinK4(src, o + 4, 2 * j + 1);
      const d1 = fr(d * sc1);
      const m1 = fr(min * m1raw);
      const d2 = fr(d * sc2);
      const m2 = fr(min * m2raw);
      const u1 = 1 << (2 * j);
      const u2 = 2 << (2 * j);
      const ql = o + 48 + 32 * j;
      for (let l = 0; l < 32; l++) out[y++] = fr(fr(d1 * ((src[ql + l] & 0x0f) + (src[qh + l] & u1 ? 16 : 0))) - m1);
      for (let l = 0; l < 32; l++) out[y++] = fr(fr(d2 * ((src[ql + l] >> 4) + (src[qh + l] & u2 ? 16 : 0))) - m2);
    }
  }
};

/**
 * block_q6_K (210 bytes / 256 values): uint8 ql[128] (low 4 bits); uint8 qh[64] (high 2 bits); int8 scales[16]
 * (one per 16 values); ggml_half d. x = (d·sc)·(q − 32).
 */
export const dequantizeQ6_K: Dequantizer = (src, out) => {
  const t = halfToFloatTable();
  let y = 0;
  for (let o = 0; o < src.length; o += 210) {
    const d = half(src, o + 208, t);
    for (let n = 0; n < 2; n++) {
      const ql = o + 64 * n;
      const qh = o + 128 + 32 * n;
      const sc = o + 192 + 8 * n;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const h = src[qh + l];
        const q1 = ((src[ql + l] & 0x0f) | (((h >> 0) & 3) << 4)) - 32;
        const q2 = ((src[ql + l + 32] & 0x0f) | (((h >> 2) & 3) << 4)) - 32;
        const q3 = ((src[ql + l] >> 4) | (((h >> 4) & 3) << 4)) - 32;
        const q4 = ((src[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32;
        out[y + l] = fr(fr(d * i8(src[sc + is])) * q1);
        out[y + l + 32] = fr(fr(d * i8(src[sc + is + 2])) * q2);
        out[y + l + 64] = fr(fr(d * i8(src[sc + is + 4])) * q3);
        out[y + l + 96] = fr(fr(d * i8(src[sc + is + 6])) * q4);
      }
      y += 128;
    }
  }
};

/** block_q8_K (292 bytes / 256 values): float d; int8 qs[256]; int16 bsums[16] (unused here). x = d·q. */
export const dequantizeQ8_K: Dequantizer = (src, out) => {
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  let y = 0;
  for (let o = 0; o < src.length; o += 292) {
    const d = view.getFloat32(o, true);
    for (let j = 0; j < 256; j++) out[y++] = fr(d * i8(src[o + 4 + j]));
  }
};
