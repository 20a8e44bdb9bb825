/**
 * The tensors (key and shape) of a Stable Diffusion single-file checkpoint in the LDM layout, enumerated from
 * an architecture description exactly as the upstream modules create them — `ldm/modules/diffusionmodules/
 * openaimodel.py` (UNetModel), `ldm/modules/diffusionmodules/model.py` (Encoder/Decoder), transformers'
 * CLIPTextModel and open_clip's text transformer — so synthetic checkpoints of any size and configuration can
 * be generated (the benchmark's real-size SD 1.5, tests of other configurations).
 */

/** UNet architecture (LDM names). */
export interface LdmUnetArch {
  inChannels: number;
  outChannels: number;
  modelChannels: number;
  channelMult: number[];
  numResBlocks: number;
  /** Levels (0-based) that have spatial transformers. */
  attentionLevels: number[];
  /** Transformer blocks per attention level (one number for every level, or one per level). */
  transformerDepth: number | number[];
  /** Transformer blocks in the middle block. */
  middleDepth?: number;
  contextDim: number;
  useLinearInTransformer: boolean;
  /** SDXL: input width of label_emb (pooled text + Fourier time ids), or undefined. */
  admInChannels?: number;
}

/** VAE architecture (LDM names). */
export interface LdmVaeArch {
  ch: number;
  chMult: number[];
  numResBlocks: number;
  zChannels: number;
  /** quant_conv / post_quant_conv present (SD, SDXL; absent in FLUX / SD3 VAEs). */
  quantConv: boolean;
}

/** CLIP text encoder architecture. */
export interface ClipArch {
  layout: 'transformers' | 'open_clip';
  hidden: number;
  layers: number;
  mlp: number;
  vocab: number;
  positions: number;
  /** Projection width (CLIPTextModelWithProjection / OpenCLIP text_projection), or undefined. */
  projection?: number;
}

/** One tensor: key and PyTorch shape. */
export interface TensorSpec {
  key: string;
  shape: number[];
}

function linear(out: TensorSpec[], prefix: string, inF: number, outF: number, bias = true): void {
  out.push({ key: `${prefix}.weight`, shape: [outF, inF] });
  if (bias) out.push({ key: `${prefix}.bias`, shape: [outF] });
}

function conv(out: TensorSpec[], prefix: string, inC: number, outC: number, k: number): void {
  out.push({ key: `${prefix}.weight`, shape: [outC, inC, k, k] });
  out.push({ key: `${prefix}.bias`, shape: [outC] });
}

function norm(out: TensorSpec[], prefix: string, c: number): void {
  out.push({ key: `${prefix}.weight`, shape: [c] });
  out.push({ key: `${prefix}.bias`, shape: [c] });
}

function resBlock(out: TensorSpec[], p: string, inC: number, outC: number, embDim: number): void {
  norm(out, `${p}.in_layers.0`, inC);
  conv(out, `${p}.in_layers.2`, inC, outC, 3);
  linear(out, `${p}.emb_layers.1`, embDim, outC);
  norm(out, `${p}.out_layers.0`, outC);
  conv(out, `${p}.out_layers.3`, outC, outC, 3);
  if (inC !== outC) conv(out, `${p}.skip_connection`, inC, outC, 1);
}

function spatialTransformer(out: TensorSpec[], p: string, c: number, depth: number, ctx: number, linearProj: boolean): void {
  norm(out, `${p}.norm`, c);
  if (linearProj) linear(out, `${p}.proj_in`, c, c);
  else conv(out, `${p}.proj_in`, c, c, 1);
  for (let d = 0; d < depth; d++) {
    const b = `${p}.transformer_blocks.${d}`;
    linear(out, `${b}.attn1.to_q`, c, c, false);
    linear(out, `${b}.attn1.to_k`, c, c, false);
    linear(out, `${b}.attn1.to_v`, c, c, false);
    linear(out, `${b}.attn1.to_out.0`, c, c);
    linear(out, `${b}.ff.net.0.proj`, c, 8 * c);
    linear(out, `${b}.ff.net.2`, 4 * c, c);
    linear(out, `${b}.attn2.to_q`, c, c, false);
    linear(out, `${b}.attn2.to_k`, ctx, c, false);
    linear(out, `${b}.attn2.to_v`, ctx, c, false);
    linear(out, `${b}.attn2.to_out.0`, c, c);
    norm(out, `${b}.norm1`, c);
    norm(out, `${b}.norm2`, c);
    norm(out, `${b}.norm3`, c);
  }
  if (linearProj) linear(out, `${p}.proj_out`, c, c);
  else conv(out, `${p}.proj_out`, c, c, 1);
}

/** UNet tensors without the `model.diffusion_model.` prefix (openaimodel.UNetModel.__init__ order). */
export function ldmUnetTensors(a: LdmUnetArch): TensorSpec[] {
  const out: TensorSpec[] = [];
  const C = a.modelChannels;
  const emb = 4 * C;
  const depthAt = (level: number) => (Array.isArray(a.transformerDepth) ? a.transformerDepth[level] : a.transformerDepth);
  linear(out, 'time_embed.0', C, emb);
  linear(out, 'time_embed.2', emb, emb);
  if (a.admInChannels) {
    linear(out, 'label_emb.0.0', a.admInChannels, emb);
    linear(out, 'label_emb.0.2', emb, emb);
  }
  conv(out, 'input_blocks.0.0', a.inChannels, C, 3);
  const skips = [C];
  let ch = C;
  let block = 1;
  a.channelMult.forEach((mult, level) => {
    for (let i = 0; i < a.numResBlocks; i++) {
      resBlock(out, `input_blocks.${block}.0`, ch, mult * C, emb);
      ch = mult * C;
      if (a.attentionLevels.includes(level) && depthAt(level) > 0) spatialTransformer(out, `input_blocks.${block}.1`, ch, depthAt(level), a.contextDim, a.useLinearInTransformer);
      skips.push(ch);
      block++;
    }
    if (level !== a.channelMult.length - 1) {
      conv(out, `input_blocks.${block}.0.op`, ch, ch, 3);
      skips.push(ch);
      block++;
    }
  });
  resBlock(out, 'middle_block.0', ch, ch, emb);
  spatialTransformer(out, 'middle_block.1', ch, a.middleDepth ?? depthAt(a.channelMult.length - 1) ?? 1, a.contextDim, a.useLinearInTransformer);
  resBlock(out, 'middle_block.2', ch, ch, emb);
  let outBlock = 0;
  [...a.channelMult].reverse().forEach((mult, r) => {
    const level = a.channelMult.length - 1 - r;
    for (let i = 0; i <= a.numResBlocks; i++) {
      const skip = skips.pop()!;
      resBlock(out, `output_blocks.${outBlock}.0`, ch + skip, mult * C, emb);
      ch = mult * C;
      let sub = 1;
      if (a.attentionLevels.includes(level) && depthAt(level) > 0) {
        spatialTransformer(out, `output_blocks.${outBlock}.1`, ch, depthAt(level), a.contextDim, a.useLinearInTransformer);
        sub = 2;
      }
      if (level !== 0 && i === a.numResBlocks) conv(out, `output_blocks.${outBlock}.${sub}.conv`, ch, ch, 3);
      outBlock++;
    }
  });
  norm(out, 'out.0', C);
  conv(out, 'out.2', C, a.outChannels, 3);
  return out;
}

function vaeResBlock(out: TensorSpec[], p: string, inC: number, outC: number): void {
  norm(out, `${p}.norm1`, inC);
  conv(out, `${p}.conv1`, inC, outC, 3);
  norm(out, `${p}.norm2`, outC);
  conv(out, `${p}.conv2`, outC, outC, 3);
  if (inC !== outC) conv(out, `${p}.nin_shortcut`, inC, outC, 1);
}

function vaeMid(out: TensorSpec[], p: string, c: number): void {
  vaeResBlock(out, `${p}.mid.block_1`, c, c);
  norm(out, `${p}.mid.attn_1.norm`, c);
  for (const n of ['q', 'k', 'v', 'proj_out']) conv(out, `${p}.mid.attn_1.${n}`, c, c, 1);
  vaeResBlock(out, `${p}.mid.block_2`, c, c);
}

/** VAE tensors without the `first_stage_model.` prefix (model.Encoder / model.Decoder; mid attention as 1×1 convs). */
export function ldmVaeTensors(a: LdmVaeArch): TensorSpec[] {
  const out: TensorSpec[] = [];
  const levels = a.chMult.length;
  conv(out, 'encoder.conv_in', 3, a.ch, 3);
  let ch = a.ch;
  a.chMult.forEach((mult, i) => {
    for (let j = 0; j < a.numResBlocks; j++) {
      vaeResBlock(out, `encoder.down.${i}.block.${j}`, ch, a.ch * mult);
      ch = a.ch * mult;
    }
    if (i !== levels - 1) conv(out, `encoder.down.${i}.downsample.conv`, ch, ch, 3);
  });
  vaeMid(out, 'encoder', ch);
  norm(out, 'encoder.norm_out', ch);
  conv(out, 'encoder.conv_out', ch, 2 * a.zChannels, 3);
  ch = a.ch * a.chMult[levels - 1];
  conv(out, 'decoder.conv_in', a.zChannels, ch, 3);
  vaeMid(out, 'decoder', ch);
  for (let i = levels - 1; i >= 0; i--) {
    for (let j = 0; j <= a.numResBlocks; j++) {
      vaeResBlock(out, `decoder.up.${i}.block.${j}`, ch, a.ch * a.chMult[i]);
      ch = a.ch * a.chMult[i];
    }
    if (i !== 0) conv(out, `decoder.up.${i}.upsample.conv`, ch, ch, 3);
  }
  norm(out, 'decoder.norm_out', ch);
  conv(out, 'decoder.conv_out', ch, 3, 3);
  if (a.quantConv) {
    conv(out, 'quant_conv', 2 * a.zChannels, 2 * a.zChannels, 1);
    conv(out, 'post_quant_conv', a.zChannels, a.zChannels, 1);
  }
  return out;
}

/**
 * Text-encoder tensors without their checkpoint prefix: transformers names from `text_model.` on, or OpenCLIP
 * names (`token_embedding.weight`, `transformer.resblocks.N.…`, `ln_final`, `text_projection` [W, P]).
 */
export function clipTensors(a: ClipArch): TensorSpec[] {
  const out: TensorSpec[] = [];
  const H = a.hidden;
  if (a.layout === 'transformers') {
    out.push({ key: 'text_model.embeddings.token_embedding.weight', shape: [a.vocab, H] });
    out.push({ key: 'text_model.embeddings.position_embedding.weight', shape: [a.positions, H] });
    for (let l = 0; l < a.layers; l++) {
      const p = `text_model.encoder.layers.${l}`;
      for (const n of ['k_proj', 'v_proj', 'q_proj', 'out_proj']) linear(out, `${p}.self_attn.${n}`, H, H);
      norm(out, `${p}.layer_norm1`, H);
      linear(out, `${p}.mlp.fc1`, H, a.mlp);
      linear(out, `${p}.mlp.fc2`, a.mlp, H);
      norm(out, `${p}.layer_norm2`, H);
    }
    norm(out, 'text_model.final_layer_norm', H);
    if (a.projection) out.push({ key: 'text_projection.weight', shape: [a.projection, H] });
    return out;
  }
  out.push({ key: 'positional_embedding', shape: [a.positions, H] });
  out.push({ key: 'token_embedding.weight', shape: [a.vocab, H] });
  for (let l = 0; l < a.layers; l++) {
    const p = `transformer.resblocks.${l}`;
    norm(out, `${p}.ln_1`, H);
    out.push({ key: `${p}.attn.in_proj_weight`, shape: [3 * H, H] });
    out.push({ key: `${p}.attn.in_proj_bias`, shape: [3 * H] });
    linear(out, `${p}.attn.out_proj`, H, H);
    norm(out, `${p}.ln_2`, H);
    linear(out, `${p}.mlp.c_fc`, H, a.mlp);
    linear(out, `${p}.mlp.c_proj`, a.mlp, H);
  }
  norm(out, 'ln_final', H);
  if (a.projection) out.push({ key: 'text_projection', shape: [H, a.projection] });
  return out;
}

/** Stable Diffusion 1.5's architecture (v1-inference.yaml): the benchmark's real-size model. */
export const SD15_ARCH = {
  unet: {
    inChannels: 4,
    outChannels: 4,
    modelChannels: 320,
    channelMult: [1, 2, 4, 4],
    numResBlocks: 2,
    attentionLevels: [0, 1, 2],
    transformerDepth: 1,
    contextDim: 768,
    useLinearInTransformer: false,
  } satisfies LdmUnetArch,
  vae: { ch: 128, chMult: [1, 2, 4, 4], numResBlocks: 2, zChannels: 4, quantConv: true } satisfies LdmVaeArch,
  clip: { layout: 'transformers', hidden: 768, layers: 12, mlp: 3072, vocab: 49408, positions: 77 } satisfies ClipArch,
};

/**
 * Stable Diffusion XL 1.0 base's architecture (sgm's sd_xl_base.yaml): UNet 320/640/1280 channels, transformer depth
 * 0 / 2 / 10 per level and 10 in the middle, linear projections, 2048-wide context (CLIP-L 768 + bigG 1280),
 * label_emb over 1280 pooled + 6 × 256 time-id features; the SD VAE; CLIP ViT-L (12 layers) and OpenCLIP ViT-bigG
 * (32 layers, 1280 wide, projection 1280). The benchmark's real-size SDXL.
 */
export const SDXL_ARCH = {
  unet: {
    inChannels: 4,
    outChannels: 4,
    modelChannels: 320,
    channelMult: [1, 2, 4],
    numResBlocks: 2,
    attentionLevels: [1, 2],
    transformerDepth: [0, 2, 10],
    middleDepth: 10,
    contextDim: 2048,
    useLinearInTransformer: true,
    admInChannels: 1280 + 6 * 256,
  } satisfies LdmUnetArch,
  vae: SD15_ARCH.vae,
  clipL: { layout: 'transformers', hidden: 768, layers: 12, mlp: 3072, vocab: 49408, positions: 77 } satisfies ClipArch,
  clipG: { layout: 'open_clip', hidden: 1280, layers: 32, mlp: 5120, vocab: 49408, positions: 77, projection: 1280 } satisfies ClipArch,
};
