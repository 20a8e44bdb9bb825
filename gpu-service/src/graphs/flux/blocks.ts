/**
 * FLUX.1's transformer blocks (BFL `DoubleStreamBlock` / `SingleStreamBlock` / `LastLayer`, ComfyUI
 * comfy/ldm/flux/layers.py; diffusers `FluxTransformerBlock` / `FluxSingleTransformerBlock` / `norm_out` + `proj_out`),
 * over token streams [B, T, D] in the graph's float type. Weights by BFL name under each block's prefix.
 *
 * Double-stream block `double_blocks.N` (image and text keep their own weights, attend jointly):
 *   per stream s ∈ {img, txt}: (shift₁, scale₁, gate₁, shift₂, scale₂, gate₂) = s_mod.lin(SiLU(vec))
 *     q, k, v = s_attn.qkv(LN(s)(1 + scale₁) + shift₁) split into heads; q, k RMS-normed per head
 *   attention over [txt; img] with RoPE on q and k → split back
 *   s += gate₁ · s_attn.proj(attn_s);  s += gate₂ · s_mlp.2(GELUtanh(s_mlp.0(LN(s)(1 + scale₂) + shift₂)))
 * Single-stream block `single_blocks.N` over x = [txt; img]:
 *   (shift, scale, gate) = modulation.lin(SiLU(vec)); h = LN(x)(1 + scale) + shift
 *   q, k, v, m = split(linear1(h), [D, D, D, mlp]); attention with QK-norm and RoPE as above
 *   x += gate · linear2([attn; GELUtanh(m)])
 * Final layer: (shift, scale) = adaLN_modulation.1(SiLU(vec)); out = linear(LN(img)(1 + scale) + shift).
 *
 * Float16 graphs clip the text stream after each double block and x after each single block to ±65504, as
 * upstream does for float16; the QK-norm statistics and the RoPE rotation compute in float32 (ComfyUI's RMSNorm
 * and `apply_rope` upcast the same way).
 */
import type { FluxConfig } from '../../checkpoints/detect/flux-config';
import type { Layers } from '../layers';
import { modulate, modulationChunks } from './modulation';
import { applyRope, toFloat32, type RopeTables } from './rope';
import { toGraphFloat } from '../unet/time-embedding';

/** What every block reads besides its own weights. */
export interface FluxBlockContext {
  layers: Layers;
  config: FluxConfig;
  /** SiLU(vec) [B, D]: the input of every modulation. */
  vecSilu: string;
  /** RoPE tables of the joint sequence [txt; img]. */
  rope: RopeTables;
}

/** [B, T, D] → per-head [B, T, H, d], RMS-normed with the QK-norm `${norm}.scale` (BFL `RMSNorm`, eps 1e-6). */
function normedHeads(ctx: FluxBlockContext, x: string, norm: string): string {
  const { layers, config } = ctx;
  const heads = layers.g.node('Reshape', [x, layers.g.ints('heads', [0, 0, config.heads, config.headDim])]);
  return layers.rmsNorm(heads, norm, config.rmsNormEps, 'scale');
}

/** Attention of normed q, k [B, S, H, d] (RoPE applied here, in float32) and v [B, S, D] → [B, S, D]. */
function ropeAttention(ctx: FluxBlockContext, q: string, k: string, v: string): string {
  const { layers, config } = ctx;
  const D = config.hiddenSize;
  const rotate = (x: string) => toGraphFloat(layers, applyRope(layers, toFloat32(layers, x), ctx.rope, D));
  return layers.attention(rotate(q), rotate(k), v, config.heads, D);
}

/** x + gate · y. */
function gated(layers: Layers, x: string, gate: string, y: string): string {
  return layers.add(x, layers.g.node('Mul', [gate, y]));
}

/** Float16 graphs: clip to ±65504 (upstream's `clip(-65504, 65504)` for float16); identity otherwise. */
function clipFloat16(layers: Layers, x: string): string {
  const g = layers.g;
  if (g.floatType !== 'float16') return x;
  return g.node('Clip', [x, g.floatConstant('fp16_min', [], [-65504]), g.floatConstant('fp16_max', [], [65504])]);
}

/** Length of axis 1 of x, int64 [1]. */
function tokens(layers: Layers, x: string): string {
  return layers.g.node('Shape', [x], { start: 1, end: 2 });
}

/** `${prefix}.0` → GELU(tanh) → `${prefix}.2`. */
function mlp(layers: Layers, x: string, prefix: string): string {
  return layers.linear(layers.geluTanh(layers.linear(x, `${prefix}.0`)), `${prefix}.2`);
}

/** One double-stream block `prefix` (`double_blocks.N`): img [B, N, D], txt [B, L, D] → both updated. */
export function doubleStreamBlock(ctx: FluxBlockContext, img: string, txt: string, prefix: string): { img: string; txt: string } {
  const { layers, config } = ctx;
  const g = layers.g;
  const D = config.hiddenSize;
  const eps = config.layerNormEps;

  const stream = (x: string, s: 'img' | 'txt') => {
    const [shift1, scale1, gate1, shift2, scale2, gate2] = modulationChunks(layers, ctx.vecSilu, `${prefix}.${s}_mod.lin`, 6, D);
    const qkv = layers.linear(modulate(layers, x, D, eps, shift1, scale1), `${prefix}.${s}_attn.qkv`);
    const [q, k, v] = g.nodeOutputs('Split', [qkv, g.ints('qkv_split', [D, D, D])], { axis: -1 }, { outputs: 3 });
    return {
      q: normedHeads(ctx, q, `${prefix}.${s}_attn.norm.query_norm`),
      k: normedHeads(ctx, k, `${prefix}.${s}_attn.norm.key_norm`),
      v,
      gate1,
      mod2: { shift: shift2, scale: scale2, gate: gate2 },
    };
  };
  const i = stream(img, 'img');
  const t = stream(txt, 'txt');

  const joint = (a: string, b: string) => g.node('Concat', [a, b], { axis: 1 });
  const attn = ropeAttention(ctx, joint(t.q, i.q), joint(t.k, i.k), joint(t.v, i.v));
  const [txtAttn, imgAttn] = g.nodeOutputs('Split', [attn, g.node('Concat', [tokens(layers, txt), tokens(layers, img)], { axis: 0 })], { axis: 1 }, { outputs: 2 });

  const finish = (x: string, a: string, st: typeof i, s: 'img' | 'txt') => {
    const afterAttn = gated(layers, x, st.gate1, layers.linear(a, `${prefix}.${s}_attn.proj`));
    const m = st.mod2;
    return gated(layers, afterAttn, m.gate, mlp(layers, modulate(layers, afterAttn, D, eps, m.shift, m.scale), `${prefix}.${s}_mlp`));
  };
  return { img: finish(img, imgAttn, i, 'img'), txt: clipFloat16(layers, finish(txt, txtAttn, t, 'txt')) };
}

/** One single-stream block `prefix` (`single_blocks.N`) over x = [txt; img] [B, L + N, D]. */
export function singleStreamBlock(ctx: FluxBlockContext, x: string, prefix: string): string {
  const { layers, config } = ctx;
  const g = layers.g;
  const D = config.hiddenSize;
  const [shift, scale, gate] = modulationChunks(layers, ctx.vecSilu, `${prefix}.modulation.lin`, 3, D);
  const h = layers.linear(modulate(layers, x, D, config.layerNormEps, shift, scale), `${prefix}.linear1`);
  const [q, k, v, m] = g.nodeOutputs('Split', [h, g.ints('linear1_split', [D, D, D, config.mlpHiddenDim])], { axis: -1 }, { outputs: 4 });
  const attn = ropeAttention(ctx, normedHeads(ctx, q, `${prefix}.norm.query_norm`), normedHeads(ctx, k, `${prefix}.norm.key_norm`), v);
  const out = layers.linear(g.node('Concat', [attn, layers.geluTanh(m)], { axis: -1 }), `${prefix}.linear2`);
  return clipFloat16(layers, gated(layers, x, gate, out));
}

/** `final_layer`: img tokens [B, N, D] → [B, N, outChannels]. */
export function finalLayer(ctx: FluxBlockContext, img: string): string {
  const { layers, config } = ctx;
  const [shift, scale] = modulationChunks(layers, ctx.vecSilu, 'final_layer.adaLN_modulation.1', 2, config.hiddenSize);
  return layers.linear(modulate(layers, img, config.hiddenSize, config.layerNormEps, shift, scale), 'final_layer.linear');
}
