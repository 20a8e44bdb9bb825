/**
 * Sinusoidal embeddings of timesteps and SDXL time ids, as LDM `timestep_embedding` (ComfyUI
 * comfy/ldm/modules/diffusionmodules/util.py) and diffusers `get_timestep_embedding` with flip_sin_to_cos
 * and downscale_freq_shift 0 compute them, in float32 whatever the graph's float type:
 *   f_k = exp(−ln(10000)·k / half), k = 0..half−1, half = ⌊dim/2⌋;  emb(t) = [cos(t·f_0..), sin(t·f_0..)]
 * (cos first), a zero column appended when dim is odd.
 */
import { DataType } from '../onnx-graph';
import type { Layers } from '../layers';

const MAX_PERIOD = 10000;

/**
 * The frequencies f_k rounded the way torch computes them in float32: (−ln(max_period) · arange) / half, then
 * exp, each step rounded to float32.
 */
export function timestepFrequencies(half: number): Float32Array {
  const scale = Math.fround(-Math.log(MAX_PERIOD));
  const f = new Float32Array(half);
  for (let k = 0; k < half; k++) f[k] = Math.exp(Math.fround(Math.fround(scale * k) / half));
  return f;
}

/**
 * Embed float32 values `t` of shape [..., 1] (broadcast against the frequencies) → float32 [..., dim].
 * @returns a float32 value (cast it to the graph's type before a Linear).
 */
export function sinusoidalEmbedding(layers: Layers, t: string, dim: number): string {
  const g = layers.g;
  const half = Math.floor(dim / 2);
  const args = g.node('Mul', [t, g.float32Constant('timestep_freqs', [half], timestepFrequencies(half))]);
  const parts = [g.node('Cos', [args]), g.node('Sin', [args])];
  if (dim % 2 === 1) {
    // A zero column of the same leading shape: 0·args[..., :1].
    const first = g.node('Slice', [args, g.ints('first_start', [0]), g.ints('first_end', [1]), g.ints('first_axis', [-1])]);
    parts.push(g.node('Mul', [first, g.float32Constant('zero', [], [0])]));
  }
  return g.node('Concat', parts, { axis: -1 });
}

/** Cast a float32 value to the graph's float type (identity for float32 graphs). */
export function toGraphFloat(layers: Layers, x: string): string {
  return layers.g.floatType === 'float16' ? layers.g.node('Cast', [x], { to: DataType.FLOAT16 }) : x;
}

/**
 * The UNet's time embedding `time_embed` (Linear → SiLU → Linear) of timesteps float32 [B]
 * → [B, timeEmbedDim] in the graph's float type.
 */
export function timeEmbedding(layers: Layers, timestep: string, timestepEmbedDim: number): string {
  const g = layers.g;
  const t = g.node('Unsqueeze', [timestep, g.ints('t_axis', [1])]);
  const sinusoid = toGraphFloat(layers, sinusoidalEmbedding(layers, t, timestepEmbedDim));
  return layers.linear(layers.silu(layers.linear(sinusoid, 'time_embed.0')), 'time_embed.2');
}

/**
 * SDXL's additional embedding `label_emb.0` (diffusers `add_embedding` with addition_embed_type "text_time",
 * `get_aug_embed`): concat(text_embeds [B, P], every time id embedded to `timeIdEmbedDim` and flattened
 * row-wise [B, n·d]) → Linear → SiLU → Linear → [B, timeEmbedDim].
 * @param timeIds float32 [B, n] (base: orig h, w, crop top, left, target h, w; refiner: orig h, w, crop
 *        top, left, aesthetic score).
 */
export function labelEmbedding(layers: Layers, textEmbeds: string, timeIds: string, timeIdEmbedDim: number): string {
  const g = layers.g;
  const ids = g.node('Unsqueeze', [timeIds, g.ints('id_axis', [2])]);
  const embedded = sinusoidalEmbedding(layers, ids, timeIdEmbedDim); // [B, n, d]
  const flat = toGraphFloat(layers, g.node('Reshape', [embedded, g.ints('flat_ids', [0, -1])]));
  const adm = g.node('Concat', [textEmbeds, flat], { axis: 1 });
  return layers.linear(layers.silu(layers.linear(adm, 'label_emb.0.0')), 'label_emb.0.2');
}
