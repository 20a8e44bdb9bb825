/**
 * A small SDXL-base-shaped single-file checkpoint (sgm layout, random deterministic weights) that converts and runs in
 * seconds, with SDXL's conventions throughout so it needs no sidecar (64-wide heads): UNet 64/128 channels over two
 * levels, transformer depth 0 / 2 and 1 in the middle, linear projections, context 64 + 128; label_emb over 64 pooled
 * + 6 time ids × 256; VAE 32/64 channels; CLIP-L 64 wide and OpenCLIP bigG 128 wide (projection 64), 2 layers each.
 */
import type { SyntheticCheckpoint } from '../../scripts/checkpoints/synthetic-checkpoint';

export const SMALL_SDXL_CHECKPOINT: Readonly<SyntheticCheckpoint> = {
  unet: {
    inChannels: 4,
    outChannels: 4,
    modelChannels: 64,
    channelMult: [1, 2],
    numResBlocks: 1,
    attentionLevels: [1],
    transformerDepth: [0, 2],
    middleDepth: 1,
    contextDim: 64 + 128,
    useLinearInTransformer: true,
    admInChannels: 64 + 6 * 256,
  },
  vae: { ch: 32, chMult: [1, 2], numResBlocks: 1, zChannels: 4, quantConv: true },
  textEncoders: [
    { prefix: 'conditioner.embedders.0.transformer.', arch: { layout: 'transformers', hidden: 64, layers: 2, mlp: 128, vocab: 49408, positions: 77 } },
    { prefix: 'conditioner.embedders.1.model.', arch: { layout: 'open_clip', hidden: 128, layers: 2, mlp: 256, vocab: 49408, positions: 77, projection: 64 } },
  ],
  dtype: 'F16',
  seed: 3,
};
