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

const RESNET_PARTS_TO_DIFFUSERS: Record<string, string> = Object.fromEntries(Object.entries(RESNET_PARTS).map(([d, l]) => [l, d]));

function resnetTailToDiffusers(rest: string): string {
  for (const [ldm, d] of Object.entries(RESNET_PARTS_TO_DIFFUSERS)) if (rest === ldm || rest.startsWith(`${ldm}.`)) return d + rest.slice(ldm.length);
  return rest;
}

/**
 * The inverse map: LDM UNet names → diffusers names (for LoRA files that name their targets the diffusers way,
 * e.g. kohya's `lora_unet_down_blocks_0_attentions_0_proj_in`). `layers_per_block` is read from the LDM keys
 * (the first downsampler is `input_blocks.{L+1}.0.op`).
 * @param ldmKeys every canonical key of the UNet.
 * @returns name → diffusers name (weights, biases or module paths alike), or undefined for names outside the map.
 */
export function ldmUnetToDiffusers(ldmKeys: readonly string[]): (name: string) => string | undefined {
  let firstDown = Infinity;
  for (const k of ldmKeys) {
    const m = /^input_blocks\.(\d+)\.0\.op\./.exec(k);
    if (m) firstDown = Math.min(firstDown, Number(m[1]));
  }
  // A UNet with a single level has no downsampler: every input block after conv_in is a res block.
  const L = Number.isFinite(firstDown) ? firstDown - 1 : Math.max(0, ...ldmKeys.map((k) => Number(/^input_blocks\.(\d+)\./.exec(k)?.[1] ?? 0)));
  const TOP: Record<string, string> = Object.fromEntries(Object.entries(TOP_LEVEL).map(([d, l]) => [l, d]));
  return (name: string) => {
    for (const [ldm, d] of Object.entries(TOP)) if (name === ldm || name.startsWith(`${ldm}.`)) return d + name.slice(ldm.length);
    let m = /^input_blocks\.(\d+)\.0\.op(\..+)?$/.exec(name);
    if (m) return `down_blocks.${Number(m[1]) / (L + 1) - 1}.downsamplers.0.conv${m[2] ?? ''}`;
    m = /^input_blocks\.(\d+)\.([01])(?:\.(.+))?$/.exec(name);
    if (m && Number(m[1]) > 0) {
      const k = Number(m[1]) - 1;
      const [i, j] = [Math.floor(k / (L + 1)), k % (L + 1)];
      const rest = m[3] ?? '';
      return m[2] === '0' ? `down_blocks.${i}.resnets.${j}${rest ? `.${resnetTailToDiffusers(rest)}` : ''}` : `down_blocks.${i}.attentions.${j}${rest ? `.${rest}` : ''}`;
    }
    m = /^middle_block\.([012])(?:\.(.+))?$/.exec(name);
    if (m) {
      const rest = m[2] ?? '';
      if (m[1] === '1') return `mid_block.attentions.0${rest ? `.${rest}` : ''}`;
      return `mid_block.resnets.${Number(m[1]) / 2}${rest ? `.${resnetTailToDiffusers(rest)}` : ''}`;
    }
    m = /^output_blocks\.(\d+)\.([012])(?:\.(.+))?$/.exec(name);
    if (m) {
      const k = Number(m[1]);
      const [i, j] = [Math.floor(k / (L + 1)), k % (L + 1)];
      const rest = m[3] ?? '';
      const upsampler = m[2] === '2' || (m[2] === '1' && /^conv(\.|$)/.test(rest) && j === L);
      if (upsampler) return `up_blocks.${i}.upsamplers.0${rest ? `.${rest}` : ''}`;
      return m[2] === '0' ? `up_blocks.${i}.resnets.${j}${rest ? `.${resnetTailToDiffusers(rest)}` : ''}` : `up_blocks.${i}.attentions.${j}${rest ? `.${rest}` : ''}`;
    }
    return undefined;
  };
}
