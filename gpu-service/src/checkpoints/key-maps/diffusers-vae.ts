/**
 * diffusers `AutoencoderKL` keys → LDM (`Encoder` / `Decoder`) keys, the canonical names of the VAE graph
 * builder; a generalisation of diffusers' `scripts/convert_diffusers_to_original_stable_diffusion.py`
 * (`convert_vae_state_dict`) to any number of blocks:
 * - encoder.down_blocks.i.resnets.j → encoder.down.i.block.j; downsamplers.0 → down.i.downsample;
 * - decoder.up_blocks.i (numbered from the bottom in diffusers) → decoder.up.{N−1−i} (LDM numbers from the
 *   top), resnets.j → block.j, upsamplers.0 → upsample;
 * - mid_block.resnets.j → mid.block_{j+1}; mid_block.attentions.0 → mid.attn_1 with group_norm → norm and
 *   to_q/to_k/to_v/to_out.0 (or the older query/key/value/proj_attn) → q/k/v/proj_out, whose Linear weights
 *   [C, C] are seen as the LDM 1×1 convolutions [C, C, 1, 1] (same data);
 * - conv_shortcut → nin_shortcut, conv_norm_out → norm_out; conv_in, conv_out, quant_conv, post_quant_conv keep
 *   their names.
 */

const ATTENTION_PARTS: Record<string, string> = {
  group_norm: 'norm',
  to_q: 'q',
  to_k: 'k',
  to_v: 'v',
  'to_out.0': 'proj_out',
  query: 'q',
  key: 'k',
  value: 'v',
  proj_attn: 'proj_out',
};

function resnetTail(rest: string): string {
  return rest.replace(/^conv_shortcut\./, 'nin_shortcut.');
}

/**
 * A renaming function for one diffusers VAE's keys.
 * @param keys every key of the file (the number of decoder up blocks comes from them).
 */
export function diffusersVaeKeyMap(keys: readonly string[]): (key: string) => string | undefined {
  let maxUp = -1;
  for (const k of keys) {
    const m = /^decoder\.up_blocks\.(\d+)\./.exec(k);
    if (m) maxUp = Math.max(maxUp, Number(m[1]));
  }
  const N = maxUp + 1;
  return (key: string) => {
    let m = /^(encoder|decoder)\.conv_norm_out\.(.+)$/.exec(key);
    if (m) return `${m[1]}.norm_out.${m[2]}`;
    m = /^encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$/.exec(key);
    if (m) return `encoder.down.${m[1]}.block.${m[2]}.${resnetTail(m[3])}`;
    m = /^encoder\.down_blocks\.(\d+)\.downsamplers\.0\.(.+)$/.exec(key);
    if (m) return `encoder.down.${m[1]}.downsample.${m[2]}`;
    m = /^decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$/.exec(key);
    if (m) return `decoder.up.${N - 1 - Number(m[1])}.block.${m[2]}.${resnetTail(m[3])}`;
    m = /^decoder\.up_blocks\.(\d+)\.upsamplers\.0\.(.+)$/.exec(key);
    if (m) return `decoder.up.${N - 1 - Number(m[1])}.upsample.${m[2]}`;
    m = /^(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.+)$/.exec(key);
    if (m) return `${m[1]}.mid.block_${Number(m[2]) + 1}.${resnetTail(m[3])}`;
    m = /^(encoder|decoder)\.mid_block\.attentions\.0\.(.+)\.(weight|bias)$/.exec(key);
    if (m) {
      const part = ATTENTION_PARTS[m[2]];
      return part ? `${m[1]}.mid.attn_1.${part}.${m[3]}` : undefined;
    }
    if (/^(encoder|decoder)\.(conv_in|conv_out)\./.test(key) || /^(quant_conv|post_quant_conv)\./.test(key)) return key;
    return undefined;
  };
}

/** The LDM shape of a renamed VAE tensor: mid-attention Linear weights [C, C] become 1×1 convs [C, C, 1, 1]. */
export function ldmVaeShape(canonical: string, shape: number[]): number[] {
  return /\.mid\.attn_1\.(q|k|v|proj_out)\.weight$/.test(canonical) && shape.length === 2 ? [...shape, 1, 1] : shape;
}
