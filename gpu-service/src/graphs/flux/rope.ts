/**
 * FLUX.1's multi-axis rotary position embedding (BFL `EmbedND` + `rope` + `apply_rope`, ComfyUI
 * comfy/ldm/flux/math.py; diffusers `FluxPosEmbed` + `apply_rotary_emb` with `repeat_interleave_real`):
 *
 *   every token has n position ids (FLUX.1: 3, (0, row, column) for image tokens, zeros for text tokens);
 *   axis a owns axesDim[a] channels of each head, i.e. axesDim[a]/2 rotation pairs with frequencies
 *   ω_j = θ^(−2j/axesDim[a]), j = 0..axesDim[a]/2 − 1, concatenated axis after axis;
 *   pair p = (x_2p, x_2p+1) of a head turns by the angle φ_p = id[axis(p)] · ω_p:
 *     x'_2p = x_2p cos φ − x_2p+1 sin φ,   x'_2p+1 = x_2p sin φ + x_2p+1 cos φ.
 *
 * Precision: upstream computes φ in float64 (`freqs_dtype=torch.float64`, BFL/ComfyUI `dtype=torch.float64`) and
 * rounds cos/sin to float32. A float32 product id·ω would be off by up to half an ulp of φ (1.9e-6 rad at
 * φ = 63, a 1024² image's last column). So ω is split into a 12-bit head and a float32 tail: id·ω_head is exact
 * for integer ids below 4096, id·ω_tail is a small correction, and cos/sin of the sum come from the angle-addition
 * formulas; the tables then match upstream's to float32 rounding. Everything here is float32 whatever the
 * graph's float type.
 */
import { DataType } from '../onnx-graph';
import type { Layers } from '../layers';

/** Rotary tables of a joint sequence: cos φ and sin φ, float32 [1, S, 1, headDim/2, 1] (broadcast over batch and heads). */
export interface RopeTables {
  cos: string;
  sin: string;
  /** Rotation pairs per head (headDim / 2). */
  pairs: number;
}

/**
 * Per pair p of a head: the position-id axis it reads and its frequency ω_p in float64, as upstream computes
 * them (`1 / θ^(arange(0, d, 2) / d)` per axis, axes concatenated).
 */
export function ropeFrequencies(axesDim: readonly number[], theta: number): { axis: number[]; omega: number[] } {
  const axis: number[] = [];
  const omega: number[] = [];
  axesDim.forEach((d, a) => {
    for (let j = 0; j < d / 2; j++) {
      axis.push(a);
      omega.push(1 / theta ** ((2 * j) / d));
    }
  });
  return { axis, omega };
}

/** ω split into a head with 12 significant bits and a float32 tail (head + tail = ω to ~2⁻³⁶ relative). */
export function splitFrequency(omega: number): { head: number; tail: number } {
  if (omega === 0) return { head: 0, tail: 0 };
  const quantum = 2 ** (Math.floor(Math.log2(omega)) - 11);
  const head = Math.round(omega / quantum) * quantum;
  return { head, tail: Math.fround(omega - head) };
}

/**
 * cos/sin tables from the position ids of the joint sequence.
 * @param ids float32 [S, n_axes] (text ids first, then image ids, as the attention's sequence).
 */
export function ropeTables(layers: Layers, ids: string, axesDim: readonly number[], theta: number): RopeTables {
  const g = layers.g;
  const { axis, omega } = ropeFrequencies(axesDim, theta);
  const pairs = axis.length;
  const split = omega.map(splitFrequency);
  // pos[s, p] = ids[s, axis(p)]
  const pos = g.node('Gather', [ids, g.ints('rope_axis_of_pair', axis)], { axis: 1 });
  const hi = g.node('Mul', [pos, g.float32Constant('rope_omega_head', [pairs], split.map((s) => s.head))]);
  const lo = g.node('Mul', [pos, g.float32Constant('rope_omega_tail', [pairs], split.map((s) => s.tail))]);
  const [cosHi, sinHi, cosLo, sinLo] = [g.node('Cos', [hi]), g.node('Sin', [hi]), g.node('Cos', [lo]), g.node('Sin', [lo])];
  // cos(a + b) = cos a cos b − sin a sin b;  sin(a + b) = sin a cos b + cos a sin b
  const cos = g.node('Sub', [g.node('Mul', [cosHi, cosLo]), g.node('Mul', [sinHi, sinLo])]);
  const sin = g.node('Add', [g.node('Mul', [sinHi, cosLo]), g.node('Mul', [cosHi, sinLo])]);
  const shape = g.ints('rope_table_shape', [1, -1, 1, pairs, 1]);
  return { cos: g.node('Reshape', [cos, shape]), sin: g.node('Reshape', [sin, shape]), pairs };
}

/**
 * Rotate the pairs (2p, 2p+1) of every head of float32 x [B, S, H, 2·pairs] → float32 [B, S, H·2·pairs].
 */
export function applyRope(layers: Layers, x: string, rope: RopeTables, channels: number): string {
  const g = layers.g;
  const paired = g.node('Reshape', [x, g.ints('rope_pairs', [0, 0, 0, rope.pairs, 2])]);
  const [even, odd] = g.nodeOutputs('Split', [paired, g.ints('rope_split', [1, 1])], { axis: -1 }, { outputs: 2 });
  const outEven = g.node('Sub', [g.node('Mul', [even, rope.cos]), g.node('Mul', [odd, rope.sin])]);
  const outOdd = g.node('Add', [g.node('Mul', [even, rope.sin]), g.node('Mul', [odd, rope.cos])]);
  const rotated = g.node('Concat', [outEven, outOdd], { axis: -1 });
  return g.node('Reshape', [rotated, g.ints('rope_merge', [0, 0, channels])]);
}

/** Cast a graph-float value to float32 (identity in float32 graphs). */
export function toFloat32(layers: Layers, x: string): string {
  return layers.g.floatType === 'float16' ? layers.g.node('Cast', [x], { to: DataType.FLOAT }) : x;
}
