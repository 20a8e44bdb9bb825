/**
 * diffusers `UNet2DConditionModel` keys → LDM (`openaimodel.UNetModel`) keys, the canonical names of the UNet
 * graph builder. The rule generalises diffusers' `scripts/convert_diffusers_to_original_stable_diffusion.py`
 * (which hard-codes SD 1.x's four blocks) to any number of blocks, reading `layers_per_block` and which up
 * blocks carry attentions from the keys themselves, the inverse of `single_file_utils.convert_ldm_unet_checkpoint`:
 * - down block i, resnet j → `input_blocks.{(L+1)i + j + 1}.0`, its attention → `….1`, its downsampler →
 *   `input_blocks.{(L+1)(i+1)}.0.op`;
 * - up block i, resnet j (L+1 of them) → `output_blocks.{(L+1)i + j}.0`, attention → `….1`, upsampler →
 *   `output_blocks.{(L+1)i + L}.{1 without attentions | 2 with}`;
 * - mid block resnets → `middle_block.0` / `.2`, attention → `middle_block.1`;
 * - resnet parts norm1/conv1/norm2/conv2/time_emb_proj/conv_shortcut → in_layers.0/.2, out_layers.0/.3,
 *   emb_layers.1, skip_connection; time_embedding.linear_1/2 → time_embed.0/2; add_embedding.linear_1/2 →
 *   label_emb.0.0/.0.2 (SDXL); conv_in → input_blocks.0.0; conv_norm_out → out.0; conv_out → out.2.
 * Transformer-block internals (proj_in, transformer_blocks.k.attn1.to_q, ff.net.0.proj, norm1…) keep their
 * names in both layouts.
 */

const RESNET_PARTS: Record<string, string> = {
  norm1: 'in_layers.0',
  conv1: 'in_layers.2',
  norm2: 'out_layers.0',
  conv2: 'out_layers.3',
  time_emb_proj: 'emb_layers.1',
  conv_shortcut: 'skip_connection',
};

const TOP_LEVEL: Record<string, string> = {
  'time_embedding.linear_1': 'time_embed.0',
  'time_embedding.linear_2': 'time_embed.2',
  'add_embedding.linear_1': 'label_emb.0.0',
  'add_embedding.linear_2': 'label_emb.0.2',
  conv_in: 'input_blocks.0.0',
  conv_norm_out: 'out.0',
  conv_out: 'out.2',
};

function resnetTail(rest: string): string {
  const dot = rest.indexOf('.');
  const part = dot < 0 ? rest : rest.slice(0, dot);
  const mapped = RESNET_PARTS[part];
  return mapped ? mapped + (dot < 0 ? '' : rest.slice(dot)) : rest;
}

/**
 * A renaming function for one diffusers UNet's keys.
 * @param keys every key of the diffusers UNet file (used to read layers_per_block and attention placement).
 * @returns key → LDM key, or undefined for a key that is not part of the UNet (none are expected).
 */
export function diffusersUnetKeyMap(keys: readonly string[]): (key: string) => string | undefined {
  let maxResnet = -1;
  const upWithAttention = new Set<number>();
  for (const k of keys) {
    const d = /^down_blocks\.(\d+)\.resnets\.(\d+)\./.exec(k);
    if (d) maxResnet = Math.max(maxResnet, Number(d[2]));
    const u = /^up_blocks\.(\d+)\.attentions\./.exec(k);
    if (u) upWithAttention.add(Number(u[1]));
  }
  const L = maxResnet + 1; // layers_per_block
  return (key: string) => {
    for (const [from, to] of Object.entries(TOP_LEVEL)) if (key.startsWith(`${from}.`)) return to + key.slice(from.length);
    let m = /^down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$/.exec(key);
    if (m) return `input_blocks.${(L + 1) * Number(m[1]) + Number(m[2]) + 1}.0.${resnetTail(m[3])}`;
    m = /^down_blocks\.(\d+)\.attentions\.(\d+)\.(.+)$/.exec(key);
    if (m) return `input_blocks.${(L + 1) * Number(m[1]) + Number(m[2]) + 1}.1.${m[3]}`;
    m = /^down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)$/.exec(key);
    if (m) return `input_blocks.${(L + 1) * (Number(m[1]) + 1)}.0.op.${m[2]}`;
    m = /^up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$/.exec(key);
    if (m) return `output_blocks.${(L + 1) * Number(m[1]) + Number(m[2])}.0.${resnetTail(m[3])}`;
    m = /^up_blocks\.(\d+)\.attentions\.(\d+)\.(.+)$/.exec(key);
    if (m) return `output_blocks.${(L + 1) * Number(m[1]) + Number(m[2])}.1.${m[3]}`;
    m = /^up_blocks\.(\d+)\.upsamplers\.0\.(.+)$/.exec(key);
    if (m) return `output_blocks.${(L + 1) * Number(m[1]) + L}.${upWithAttention.has(Number(m[1])) ? 2 : 1}.${m[2]}`;
    m = /^mid_block\.resnets\.(\d+)\.(.+)$/.exec(key);
    if (m) return `middle_block.${2 * Number(m[1])}.${resnetTail(m[2])}`;
    m = /^mid_block\.attentions\.0\.(.+)$/.exec(key);
    if (m) return `middle_block.1.${m[1]}`;
    return undefined;
  };
}
