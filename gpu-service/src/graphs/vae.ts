/**
 * AutoencoderKL (VAE) encoder and decoder graphs, built from LDM-named weights (ldm/modules/diffusionmodules/
 * model.py `Encoder` / `Decoder`, ComfyUI's copy of it; diffusers `AutoencoderKL` computes the same):
 *
 *   ResnetBlock(x)  = shortcut(x) + conv2(SiLU(norm2(conv1(SiLU(norm1(x))))));  shortcut = nin_shortcut (1×1)
 *                     when the width changes, else identity
 *   AttnBlock(x)    = x + proj_out(attention(q(h), k(h), v(h))), h = norm(x); one head of width C over the h·w
 *                     tokens, q/k/v/proj_out 1×1 convs [C, C, 1, 1]
 *   Downsample(x)   = conv 3×3 stride 2 padding 0 of F.pad(x, (0, 1, 0, 1)) (right and bottom by one)
 *   Upsample(x)     = conv 3×3 of nearest ×2
 *   encoder         = conv_in → per level: res blocks (+ attention) (+ downsample but the last) → mid (block_1,
 *                     attn_1, block_2) → norm_out → SiLU → conv_out [2z]; quant_conv → [mean; logvar]
 *   decoder         = post_quant_conv → conv_in → mid → levels L−1..0: res blocks (+ attention) (+ upsample but
 *                     level 0) → norm_out → SiLU → conv_out
 * Every GroupNorm uses the config's groups and eps (LDM `Normalize`: 32, 1e-6).
 *
 * Graph I/O (ENGINE.md), float = the graph's float type:
 *   decoder: `latent_sample` float [batch, latent, latent_height, latent_width] (the raw VAE latent: the pipeline
 *            has divided by scaling_factor and added shift_factor) → `sample` float [batch, out, height, width]
 *            (height = latent_height·2^(L−1); about [−1, 1], unclamped).
 *   encoder: `sample` float [batch, in, height, width] in [−1, 1] → `latent_sample` (posterior mean) and
 *            `latent_logvar` (clamped to [−30, 20], LDM DiagonalGaussianDistribution), both float
 *            [batch, latent, latent_height, latent_width]; std = exp(logvar / 2) is the pipeline's.
 */
import type { VaeConfig } from '../checkpoints/detect/vae-config';
import type { WeightSet } from '../weights/weight-set';
import { Layers, type AttentionKind } from './layers';
import { OnnxGraph, type FloatType } from './onnx-graph';

/** How a VAE graph is emitted. */
export interface VaeGraphOptions {
  /** Compute type; default 'float32' (float16 is for GPU providers). */
  floatType?: FloatType;
  /** Mid-block (and level) attention: 'contrib' MultiHeadAttention (default; memory-bounded fused kernels) or 'standard'. */
  attention?: AttentionKind;
}

/** LDM DiagonalGaussianDistribution clamps logvar to this range. */
export const LOGVAR_RANGE = [-30, 20] as const;

/**
 * The decoder graph (`latent_sample` → `sample`) of `config` with weights from `weights` (canonical LDM names).
 * @throws Error when `config` has no decoder; MissingWeightError / WeightShapeError when a tensor the config
 *         needs is absent or has another shape.
 */
export function buildVaeDecoder(config: VaeConfig, weights: WeightSet, opts: VaeGraphOptions = {}): OnnxGraph {
  const dec = config.decoder;
  if (!dec) throw new Error(`${weights.where}: the VAE has no decoder (no decoder.* tensors)`);
  const b = new VaeBlocks(new OnnxGraph('vae_decoder', opts.floatType ?? 'float32'), weights, config, opts.attention);
  const g = b.g;
  const widths = config.blockOutChannels;
  const levels = widths.length;
  const top = widths[levels - 1];

  let h = g.floatInput('latent_sample', ['batch', config.latentChannels, 'latent_height', 'latent_width']);
  if (dec.postQuantConv) h = b.conv(h, 'post_quant_conv', config.latentChannels, config.zChannels, 1);
  h = b.conv(h, 'decoder.conv_in', config.zChannels, top, 3);
  h = b.mid(h, 'decoder.mid', top, dec.midAttention);
  let width = top;
  for (let i = levels - 1; i >= 0; i--) {
    const attention = dec.attentionLevels.includes(i);
    for (let j = 0; j <= config.numResBlocks; j++) {
      h = b.resnet(h, `decoder.up.${i}.block.${j}`, width, widths[i]);
      width = widths[i];
      if (attention) h = b.attention(h, `decoder.up.${i}.attn.${j}`, width);
    }
    if (i > 0) h = b.conv(b.layers.upsampleNearest2x(h), `decoder.up.${i}.upsample.conv`, width, width, 3);
  }
  h = b.layers.silu(b.norm(h, 'decoder.norm_out', width));
  h = b.conv(h, 'decoder.conv_out', width, dec.outChannels, 3);
  g.floatOutput('sample', h, ['batch', dec.outChannels, 'height', 'width']);
  return g;
}

/**
 * The encoder graph (`sample` → `latent_sample` = mean, `latent_logvar`) of `config` with weights from `weights`.
 * @throws Error when `config` has no encoder; MissingWeightError / WeightShapeError as buildVaeDecoder.
 */
export function buildVaeEncoder(config: VaeConfig, weights: WeightSet, opts: VaeGraphOptions = {}): OnnxGraph {
  const enc = config.encoder;
  if (!enc) throw new Error(`${weights.where}: the VAE has no encoder (no encoder.* tensors)`);
  const b = new VaeBlocks(new OnnxGraph('vae_encoder', opts.floatType ?? 'float32'), weights, config, opts.attention);
  const g = b.g;
  const widths = config.blockOutChannels;
  const levels = widths.length;

  let h = b.conv(g.floatInput('sample', ['batch', enc.inChannels, 'height', 'width']), 'encoder.conv_in', enc.inChannels, config.ch, 3);
  let width = config.ch;
  for (let i = 0; i < levels; i++) {
    const attention = enc.attentionLevels.includes(i);
    for (let j = 0; j < config.numResBlocks; j++) {
      h = b.resnet(h, `encoder.down.${i}.block.${j}`, width, widths[i]);
      width = widths[i];
      if (attention) h = b.attention(h, `encoder.down.${i}.attn.${j}`, width);
    }
    // F.pad(x, (0, 1, 0, 1)) then padding 0 = ONNX Conv pads [top 0, left 0, bottom 1, right 1].
    if (i < levels - 1) h = b.conv(h, `encoder.down.${i}.downsample.conv`, width, width, 3, { stride: 2, pads: [0, 0, 1, 1] });
  }
  h = b.mid(h, 'encoder.mid', width, enc.midAttention);
  h = b.layers.silu(b.norm(h, 'encoder.norm_out', width));
  h = b.conv(h, 'encoder.conv_out', width, 2 * config.zChannels, 3);
  if (enc.quantConv) h = b.conv(h, 'quant_conv', 2 * config.zChannels, 2 * config.latentChannels, 1);

  const latent = config.latentChannels;
  const [mean, logvar] = g.nodeOutputs('Split', [h, g.ints('moments_split', [latent, latent])], { axis: 1 }, { outputs: 2 });
  const clamped = g.node('Clip', [logvar, g.floatConstant('logvar_min', [], [LOGVAR_RANGE[0]]), g.floatConstant('logvar_max', [], [LOGVAR_RANGE[1]])]);
  const dims = ['batch', latent, 'latent_height', 'latent_width'];
  g.floatOutput('latent_sample', mean, dims);
  g.floatOutput('latent_logvar', clamped, dims);
  return g;
}

/** The LDM blocks over one graph, each checking the shapes of the tensors it uses. */
class VaeBlocks {
  readonly layers: Layers;

  constructor(
    readonly g: OnnxGraph,
    readonly w: WeightSet,
    readonly config: VaeConfig,
    attention: AttentionKind | undefined,
  ) {
    this.layers = new Layers(g, w, { attention });
  }

  /** Conv2d `prefix` [out, in, k, k] with bias [out]; padding k/2 unless `pads` says otherwise. */
  conv(x: string, prefix: string, inC: number, outC: number, kernel: number, opts: { stride?: number; pads?: [number, number, number, number] } = {}): string {
    this.layers.expectShape(`${prefix}.weight`, [outC, inC, kernel, kernel]);
    this.layers.expectShape(`${prefix}.bias`, [outC]);
    return this.layers.conv2d(x, prefix, opts);
  }

  /** GroupNorm `prefix` over C channels with the config's groups and eps. */
  norm(x: string, prefix: string, C: number): string {
    this.layers.expectShape(`${prefix}.weight`, [C]);
    this.layers.expectShape(`${prefix}.bias`, [C]);
    return this.layers.groupNorm(x, prefix, this.config.normGroups, this.config.eps);
  }

  /** LDM ResnetBlock (temb_channels = 0, dropout off) from inC to outC channels. */
  resnet(x: string, prefix: string, inC: number, outC: number): string {
    const L = this.layers;
    let h = this.conv(L.silu(this.norm(x, `${prefix}.norm1`, inC)), `${prefix}.conv1`, inC, outC, 3);
    h = this.conv(L.silu(this.norm(h, `${prefix}.norm2`, outC)), `${prefix}.conv2`, outC, outC, 3);
    if (inC === outC) return L.add(x, h);
    // LDM's use_conv_shortcut variant stores a 3×3 `conv_shortcut`; the VAEs in use have the 1×1 `nin_shortcut`.
    const shortcut = this.w.has(`${prefix}.conv_shortcut.weight`)
      ? this.conv(x, `${prefix}.conv_shortcut`, inC, outC, 3)
      : this.conv(x, `${prefix}.nin_shortcut`, inC, outC, 1);
    return L.add(shortcut, h);
  }

  /** LDM AttnBlock: single-head self-attention over the h·w positions, residual. */
  attention(x: string, prefix: string, C: number): string {
    const L = this.layers;
    const h = this.norm(x, `${prefix}.norm`, C);
    const [q, k, v] = (['q', 'k', 'v'] as const).map((p) => L.toTokens(this.conv(h, `${prefix}.${p}`, C, C, 1)));
    const attended = L.fromTokens(L.attention(q, k, v, 1, C), x);
    return L.add(x, this.conv(attended, `${prefix}.proj_out`, C, C, 1));
  }

  /** Mid block: block_1, attn_1 (when present), block_2, all C wide. */
  mid(x: string, prefix: string, C: number, attention: boolean): string {
    let h = this.resnet(x, `${prefix}.block_1`, C, C);
    if (attention) h = this.attention(h, `${prefix}.attn_1`, C);
    return this.resnet(h, `${prefix}.block_2`, C, C);
  }
}
