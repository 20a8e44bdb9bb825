/**
 * diffusers `FluxTransformer2DModel` keys → BFL original keys (the canonical names of the FLUX.1 transformer
 * builder): the exact inverse of diffusers' `single_file_utils.convert_flux_transformer_checkpoint_to_diffusers`,
 * for any width and block count (upstream's converter hard-codes FLUX.1's 3072 to split linear1; the inverse
 * direction needs no width, parts are joined in order).
 *
 * Renamed one to one:
 *   x_embedder → img_in;  context_embedder → txt_in;  proj_out → final_layer.linear
 *   time_text_embed.{timestep_embedder, text_embedder, guidance_embedder}.linear_{1,2}
 *     → {time_in, vector_in, guidance_in}.{in_layer, out_layer}
 *   transformer_blocks.N.norm1.linear / norm1_context.linear → double_blocks.N.img_mod.lin / txt_mod.lin
 *   ….attn.norm_q / norm_k / norm_added_q / norm_added_k (.weight) → img_attn / txt_attn .norm.{query,key}_norm.scale
 *   ….attn.to_out.0 / to_add_out → img_attn.proj / txt_attn.proj
 *   ….ff.net.0.proj / ff.net.2 / ff_context.… → img_mlp.0 / img_mlp.2 / txt_mlp.…
 *   single_transformer_blocks.N.norm.linear → single_blocks.N.modulation.lin; proj_out → linear2;
 *   ….attn.norm_q / norm_k → norm.query_norm.scale / key_norm.scale
 * Assembled (WeightSet assembled tensors: the stored parts are read and joined when the graph is saved):
 *   attn.to_q, to_k, to_v → double_blocks.N.img_attn.qkv; attn.add_q_proj, add_k_proj, add_v_proj → txt_attn.qkv
 *   single blocks' attn.to_q, to_k, to_v, proj_mlp → single_blocks.N.linear1 (rows in that order)
 *   norm_out.linear (rows scale, shift) → final_layer.adaLN_modulation.1 (rows shift, scale)
 * Weights and biases alike. Keys the map does not know keep their diffusers names, so the builder's tensor check
 * refuses them by name (an IP-adapter's encoder_hid_proj, a ControlNet …).
 */
import { concatFirstAxis, MissingWeightError, swapFirstAxisHalves, WeightSet, type WeightRef } from '../../weights/weight-set';

const EMBEDDERS: Record<string, string> = {
  'time_text_embed.timestep_embedder': 'time_in',
  'time_text_embed.text_embedder': 'vector_in',
  'time_text_embed.guidance_embedder': 'guidance_in',
};

const DOUBLE_BLOCK_PARTS: Record<string, string> = {
  'norm1.linear': 'img_mod.lin',
  'norm1_context.linear': 'txt_mod.lin',
  'attn.to_out.0': 'img_attn.proj',
  'attn.to_add_out': 'txt_attn.proj',
  'ff.net.0.proj': 'img_mlp.0',
  'ff.net.2': 'img_mlp.2',
  'ff_context.net.0.proj': 'txt_mlp.0',
  'ff_context.net.2': 'txt_mlp.2',
};

/** RMSNorm `weight`s → BFL `scale`s. */
const DOUBLE_BLOCK_NORMS: Record<string, string> = {
  'attn.norm_q': 'img_attn.norm.query_norm',
  'attn.norm_k': 'img_attn.norm.key_norm',
  'attn.norm_added_q': 'txt_attn.norm.query_norm',
  'attn.norm_added_k': 'txt_attn.norm.key_norm',
};

const SINGLE_BLOCK_PARTS: Record<string, string> = {
  'norm.linear': 'modulation.lin',
  proj_out: 'linear2',
};

const SINGLE_BLOCK_NORMS: Record<string, string> = {
  'attn.norm_q': 'norm.query_norm',
  'attn.norm_k': 'norm.key_norm',
};

/** Fused BFL tensors and the diffusers parts they are made of, in row order. */
const DOUBLE_BLOCK_FUSED: Record<string, readonly string[]> = {
  'img_attn.qkv': ['attn.to_q', 'attn.to_k', 'attn.to_v'],
  'txt_attn.qkv': ['attn.add_q_proj', 'attn.add_k_proj', 'attn.add_v_proj'],
};
const SINGLE_BLOCK_FUSED: Record<string, readonly string[]> = {
  linear1: ['attn.to_q', 'attn.to_k', 'attn.to_v', 'proj_mlp'],
};

/** The BFL name of a diffusers key renamed one to one; undefined for parts of fused tensors and unknown keys. */
export function diffusersFluxRename(key: string): string | undefined {
  const m = /^(.+)\.(weight|bias)$/.exec(key);
  if (!m) return undefined;
  const [, module, param] = m;
  if (module === 'x_embedder') return `img_in.${param}`;
  if (module === 'context_embedder') return `txt_in.${param}`;
  if (module === 'proj_out') return `final_layer.linear.${param}`;
  const e = /^(time_text_embed\.\w+)\.linear_([12])$/.exec(module);
  if (e && EMBEDDERS[e[1]]) return `${EMBEDDERS[e[1]]}.${e[2] === '1' ? 'in_layer' : 'out_layer'}.${param}`;
  let b = /^transformer_blocks\.(\d+)\.(.+)$/.exec(module);
  if (b) {
    if (DOUBLE_BLOCK_PARTS[b[2]]) return `double_blocks.${b[1]}.${DOUBLE_BLOCK_PARTS[b[2]]}.${param}`;
    if (DOUBLE_BLOCK_NORMS[b[2]] && param === 'weight') return `double_blocks.${b[1]}.${DOUBLE_BLOCK_NORMS[b[2]]}.scale`;
    return undefined;
  }
  b = /^single_transformer_blocks\.(\d+)\.(.+)$/.exec(module);
  if (b) {
    if (SINGLE_BLOCK_PARTS[b[2]]) return `single_blocks.${b[1]}.${SINGLE_BLOCK_PARTS[b[2]]}.${param}`;
    if (SINGLE_BLOCK_NORMS[b[2]] && param === 'weight') return `single_blocks.${b[1]}.${SINGLE_BLOCK_NORMS[b[2]]}.scale`;
  }
  return undefined;
}

/**
 * A diffusers FLUX transformer's weights (diffusers names, e.g. `WeightSet.fromFile` of each shard, merged)
 * under BFL names, fused tensors assembled.
 * @throws MissingWeightError naming the diffusers key when a part of a fused tensor is absent (e.g. to_k without
 *         to_q); Error when parts cannot be joined (their trailing dims differ).
 */
export function diffusersFluxWeights(diffusers: WeightSet): WeightSet {
  const refs = new Map<string, WeightRef>();
  const consumed = new Set<string>();
  const fuse = (blockPrefix: string, bflPrefix: string, fused: Record<string, readonly string[]>) => {
    for (const [target, parts] of Object.entries(fused)) {
      for (const param of ['weight', 'bias']) {
        const keys = parts.map((p) => `${blockPrefix}.${p}.${param}`);
        const present = keys.filter((k) => diffusers.has(k));
        if (present.length === 0) continue; // no bias: the builder decides whether that is allowed
        const missing = keys.find((k) => !diffusers.has(k));
        if (missing) throw new MissingWeightError(missing, diffusers.where);
        refs.set(`${bflPrefix}.${target}.${param}`, concatFirstAxis(keys.map((k) => diffusers.ref(k))));
        keys.forEach((k) => consumed.add(k));
      }
    }
  };
  for (let i = 0; i <= diffusers.maxIndex('transformer_blocks.'); i++) fuse(`transformer_blocks.${i}`, `double_blocks.${i}`, DOUBLE_BLOCK_FUSED);
  for (let i = 0; i <= diffusers.maxIndex('single_transformer_blocks.'); i++) fuse(`single_transformer_blocks.${i}`, `single_blocks.${i}`, SINGLE_BLOCK_FUSED);
  for (const param of ['weight', 'bias']) {
    const key = `norm_out.linear.${param}`;
    if (!diffusers.has(key)) continue;
    refs.set(`final_layer.adaLN_modulation.1.${param}`, swapFirstAxisHalves(diffusers.ref(key)));
    consumed.add(key);
  }
  for (const key of diffusers.names()) {
    if (consumed.has(key)) continue;
    refs.set(diffusersFluxRename(key) ?? key, diffusers.ref(key));
  }
  return new WeightSet(refs, diffusers.where);
}
