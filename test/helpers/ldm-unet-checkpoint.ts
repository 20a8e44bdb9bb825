/**
 * Random-weight LDM UNet tensors of any configuration, named as a single-file checkpoint names them, laid out
 * the way LDM `openaimodel.UNetModel.__init__` creates its modules (input_block_chans bookkeeping, one more
 * res block per level on the way up, Upsample at index 1 or 2). Tests write them with writeSafetensors to
 * check architecture detection on configurations the fixtures do not have.
 */
import type { TensorToWrite } from '../../gpu-service/src/weights/safetensors-writer';
import { createMulberry32 } from '../../scripts/tiny-model/prng';

export interface LdmUnetSpec {
  inChannels: number;
  outChannels: number;
  modelChannels: number;
  channelMult: number[];
  numResBlocks: number;
  /** Transformer depth per level (0 = no attention at that level), the same on the way down and up. */
  transformerDepth: number[];
  /** Middle transformer depth (≥ 1). */
  transformerDepthMiddle: number;
  contextDim: number;
  useLinear: boolean;
  /** SDXL label_emb input width (pooled + time ids × d), or undefined. */
  admInChannels?: number;
  /** Width of each GEGLU half (default 4 × channels). */
  ffMult?: number;
}

/** The tensors of `spec` under `prefix` (e.g. `model.diffusion_model.`), F32, deterministic for `seed`. */
export function ldmUnetTensors(spec: LdmUnetSpec, prefix = 'model.diffusion_model.', seed = 1): TensorToWrite[] {
  const rand = createMulberry32(seed);
  const out: TensorToWrite[] = [];
  const tensor = (key: string, shape: number[], kind: 'weight' | 'bias' | 'norm' = 'weight') => {
    const fanIn = shape.length > 1 ? shape.slice(1).reduce((a, b) => a * b, 1) : 1;
    const n = shape.reduce((a, b) => a * b, 1);
    out.push({
      key: prefix + key,
      dtype: 'F32',
      shape,
      values: () => {
        const v = new Float32Array(n);
        for (let i = 0; i < n; i++) {
          const u = rand() * 2 - 1;
          v[i] = kind === 'norm' ? 1 + 0.1 * u : kind === 'bias' ? 0.05 * u : u / Math.sqrt(fanIn);
        }
        return v;
      },
    });
  };
  const linear = (name: string, outF: number, inF: number, bias = true) => {
    tensor(`${name}.weight`, [outF, inF]);
    if (bias) tensor(`${name}.bias`, [outF], 'bias');
  };
  const conv = (name: string, outC: number, inC: number, k: number) => {
    tensor(`${name}.weight`, [outC, inC, k, k]);
    tensor(`${name}.bias`, [outC], 'bias');
  };
  const norm = (name: string, c: number) => {
    tensor(`${name}.weight`, [c], 'norm');
    tensor(`${name}.bias`, [c], 'bias');
  };
  const ted = spec.modelChannels * 4;
  const res = (name: string, inC: number, outC: number) => {
    norm(`${name}.in_layers.0`, inC);
    conv(`${name}.in_layers.2`, outC, inC, 3);
    linear(`${name}.emb_layers.1`, outC, ted);
    norm(`${name}.out_layers.0`, outC);
    conv(`${name}.out_layers.3`, outC, outC, 3);
    if (inC !== outC) conv(`${name}.skip_connection`, outC, inC, 1);
  };
  const transformer = (name: string, c: number, depth: number) => {
    norm(`${name}.norm`, c);
    if (spec.useLinear) linear(`${name}.proj_in`, c, c);
    else conv(`${name}.proj_in`, c, c, 1);
    const ff = (spec.ffMult ?? 4) * c;
    for (let d = 0; d < depth; d++) {
      const b = `${name}.transformer_blocks.${d}`;
      for (const [attn, kv] of [['attn1', c], ['attn2', spec.contextDim]] as const) {
        linear(`${b}.${attn}.to_q`, c, c, false);
        linear(`${b}.${attn}.to_k`, c, kv, false);
        linear(`${b}.${attn}.to_v`, c, kv, false);
        linear(`${b}.${attn}.to_out.0`, c, c);
      }
      for (const n of ['norm1', 'norm2', 'norm3']) norm(`${b}.${n}`, c);
      linear(`${b}.ff.net.0.proj`, 2 * ff, c);
      linear(`${b}.ff.net.2`, c, ff);
    }
    if (spec.useLinear) linear(`${name}.proj_out`, c, c);
    else conv(`${name}.proj_out`, c, c, 1);
  };

  linear('time_embed.0', ted, spec.modelChannels);
  linear('time_embed.2', ted, ted);
  if (spec.admInChannels !== undefined) {
    linear('label_emb.0.0', ted, spec.admInChannels);
    linear('label_emb.0.2', ted, ted);
  }
  conv('input_blocks.0.0', spec.modelChannels, spec.inChannels, 3);
  const inputBlockChans = [spec.modelChannels];
  let ch = spec.modelChannels;
  let block = 1;
  spec.channelMult.forEach((mult, level) => {
    for (let r = 0; r < spec.numResBlocks; r++) {
      res(`input_blocks.${block}.0`, ch, mult * spec.modelChannels);
      ch = mult * spec.modelChannels;
      if (spec.transformerDepth[level] > 0) transformer(`input_blocks.${block}.1`, ch, spec.transformerDepth[level]);
      inputBlockChans.push(ch);
      block++;
    }
    if (level !== spec.channelMult.length - 1) {
      conv(`input_blocks.${block}.0.op`, ch, ch, 3);
      inputBlockChans.push(ch);
      block++;
    }
  });
  res('middle_block.0', ch, ch);
  transformer('middle_block.1', ch, spec.transformerDepthMiddle);
  res('middle_block.2', ch, ch);
  block = 0;
  for (let level = spec.channelMult.length - 1; level >= 0; level--) {
    for (let i = 0; i <= spec.numResBlocks; i++) {
      const ich = inputBlockChans.pop()!;
      res(`output_blocks.${block}.0`, ch + ich, spec.modelChannels * spec.channelMult[level]);
      ch = spec.modelChannels * spec.channelMult[level];
      const hasAttn = spec.transformerDepth[level] > 0;
      if (hasAttn) transformer(`output_blocks.${block}.1`, ch, spec.transformerDepth[level]);
      if (level > 0 && i === spec.numResBlocks) conv(`output_blocks.${block}.${hasAttn ? 2 : 1}.conv`, ch, ch, 3);
      block++;
    }
  }
  norm('out.0', ch);
  conv('out.2', spec.outChannels, spec.modelChannels, 3);
  return out;
}
