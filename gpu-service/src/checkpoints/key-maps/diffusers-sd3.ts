/**
 * diffusers `SD3Transformer2DModel` keys → the original (Stability AI / ComfyUI mmdit.py) keys, the canonical names
 * of the MMDiT graph builder: the exact inverse of upstream diffusers' `convert_sd3_transformer_checkpoint_to_diffusers`
 * (loaders/single_file_utils.py), which splits each fused qkv in three and swaps the (shift, scale) halves of the
 * two pre-only modulations. With N = the number of transformer_blocks:
 *
 * | diffusers | original |
 * |---|---|
 * | `pos_embed.pos_embed`, `pos_embed.proj` | `pos_embed`, `x_embedder.proj` |
 * | `time_text_embed.timestep_embedder.linear_1/2` | `t_embedder.mlp.0/2` |
 * | `time_text_embed.text_embedder.linear_1/2` | `y_embedder.mlp.0/2` |
 * | `context_embedder` | `context_embedder` |
 * | `transformer_blocks.i.attn.to_q ‖ to_k ‖ to_v` | `joint_blocks.i.x_block.attn.qkv` (rows concatenated) |
 * | `….attn.add_q_proj ‖ add_k_proj ‖ add_v_proj` | `….context_block.attn.qkv` |
 * | `….attn.norm_q / norm_k`, `norm_added_q / norm_added_k` | `….x_block.attn.ln_q / ln_k`, `….context_block.attn.ln_q / ln_k` |
 * | `….attn.to_out.0`, `….attn.to_add_out` | `….x_block.attn.proj`, `….context_block.attn.proj` |
 * | `….attn2.to_q ‖ to_k ‖ to_v`, `attn2.norm_q / norm_k`, `attn2.to_out.0` | `….x_block.attn2.qkv`, `attn2.ln_q / ln_k`, `attn2.proj` |
 * | `….norm1.linear`, `….norm1_context.linear` | `….x_block.adaLN_modulation.1`, `….context_block.adaLN_modulation.1` (halves swapped for i = N−1) |
 * | `….ff.net.0.proj / net.2`, `….ff_context.net.0.proj / net.2` | `….x_block.mlp.fc1 / fc2`, `….context_block.mlp.fc1 / fc2` |
 * | `proj_out`, `norm_out.linear` | `final_layer.linear`, `final_layer.adaLN_modulation.1` (halves swapped) |
 *
 * Initializers built from the result hold the assembled tensors under the original names (weight-set.ts
 * `concatFirstAxis` / `swapFirstAxisHalves`, which keep the stored tensors as their sources).
 */
import { concatFirstAxis, swapFirstAxisHalves, WeightSet, type WeightRef } from '../../weights/weight-set';
import type { TensorFile } from '../../weights/tensor-file';

/** One-to-one renames of whole module paths (the rest of the key — `.weight`, `.bias` — is kept). */
const TOP_LEVEL: ReadonlyArray<[string, string]> = [
  ['pos_embed.proj', 'x_embedder.proj'],
  ['time_text_embed.timestep_embedder.linear_1', 't_embedder.mlp.0'],
  ['time_text_embed.timestep_embedder.linear_2', 't_embedder.mlp.2'],
  ['time_text_embed.text_embedder.linear_1', 'y_embedder.mlp.0'],
  ['time_text_embed.text_embedder.linear_2', 'y_embedder.mlp.2'],
  ['context_embedder', 'context_embedder'],
  ['proj_out', 'final_layer.linear'],
];

/** Per-block one-to-one renames: diffusers module under `transformer_blocks.i.` → original under `joint_blocks.i.`. */
const BLOCK: ReadonlyArray<[string, string]> = [
  ['attn.norm_q', 'x_block.attn.ln_q'],
  ['attn.norm_k', 'x_block.attn.ln_k'],
  ['attn.norm_added_q', 'context_block.attn.ln_q'],
  ['attn.norm_added_k', 'context_block.attn.ln_k'],
  ['attn.to_out.0', 'x_block.attn.proj'],
  ['attn.to_add_out', 'context_block.attn.proj'],
  ['attn2.norm_q', 'x_block.attn2.ln_q'],
  ['attn2.norm_k', 'x_block.attn2.ln_k'],
  ['attn2.to_out.0', 'x_block.attn2.proj'],
  ['norm1.linear', 'x_block.adaLN_modulation.1'],
  ['ff.net.0.proj', 'x_block.mlp.fc1'],
  ['ff.net.2', 'x_block.mlp.fc2'],
  ['ff_context.net.0.proj', 'context_block.mlp.fc1'],
  ['ff_context.net.2', 'context_block.mlp.fc2'],
];

/** Per-block fused projections: the original qkv and the three diffusers modules whose rows it concatenates. */
const FUSED_QKV: ReadonlyArray<[string, [string, string, string]]> = [
  ['x_block.attn.qkv', ['attn.to_q', 'attn.to_k', 'attn.to_v']],
  ['context_block.attn.qkv', ['attn.add_q_proj', 'attn.add_k_proj', 'attn.add_v_proj']],
  ['x_block.attn2.qkv', ['attn2.to_q', 'attn2.to_k', 'attn2.to_v']],
];

/**
 * The tensors of a diffusers SD3 transformer file (`transformer/diffusion_pytorch_model.safetensors`) under the
 * original names. Keys the map does not know keep their diffusers names, so the graph builder refuses them as
 * tensors of another architecture instead of their being dropped.
 * @param where description for errors; default `<path> (diffusers SD3 transformer)`.
 * @throws MissingWeightError naming the diffusers key when a fused group is incomplete (to_q without to_v, …);
 *         Error when a stored key is also the original name of a renamed one (a file mixing both layouts).
 */
export function diffusersSd3Weights(file: TensorFile, where = `${file.path} (diffusers SD3 transformer)`): WeightSet {
  const raw = WeightSet.fromFile(file, '', where);
  const refs = new Map<string, WeightRef>();
  const used = new Set<string>();
  const take = (key: string): WeightRef => {
    used.add(key);
    return raw.ref(key);
  };
  const suffixes = (module: string) => ['weight', 'bias'].filter((s) => raw.has(`${module}.${s}`));

  if (raw.has('pos_embed.pos_embed')) refs.set('pos_embed', take('pos_embed.pos_embed'));
  for (const [from, to] of TOP_LEVEL) for (const s of suffixes(from)) refs.set(`${to}.${s}`, take(`${from}.${s}`));
  for (const s of suffixes('norm_out.linear')) refs.set(`final_layer.adaLN_modulation.1.${s}`, swapFirstAxisHalves(take(`norm_out.linear.${s}`)));

  const last = raw.maxIndex('transformer_blocks.');
  for (let i = 0; i <= last; i++) {
    const d = `transformer_blocks.${i}`;
    const o = `joint_blocks.${i}`;
    for (const [from, to] of BLOCK) for (const s of suffixes(`${d}.${from}`)) refs.set(`${o}.${to}.${s}`, take(`${d}.${from}.${s}`));
    for (const [to, parts] of FUSED_QKV) {
      for (const s of ['weight', 'bias']) {
        if (!parts.some((part) => raw.has(`${d}.${part}.${s}`))) continue;
        refs.set(`${o}.${to}.${s}`, concatFirstAxis(parts.map((part) => take(`${d}.${part}.${s}`))));
      }
    }
    // The last block's context stream is pre-only: its (shift, scale) modulation is stored swapped upstream.
    for (const s of suffixes(`${d}.norm1_context.linear`)) {
      const ref = take(`${d}.norm1_context.linear.${s}`);
      refs.set(`${o}.context_block.adaLN_modulation.1.${s}`, i === last ? swapFirstAxisHalves(ref) : ref);
    }
  }

  for (const key of raw.names()) {
    if (used.has(key)) continue;
    if (refs.has(key)) throw new Error(`${where}: "${key}" is both a stored tensor and the original name of a diffusers one (a file mixing the two layouts)`);
    refs.set(key, raw.ref(key));
  }
  return new WeightSet(refs, where);
}
