/**
 * A small SD 1.x-shaped single-file checkpoint (LDM layout, random deterministic weights) that the checkpoint engine
 * converts and runs in about a second: for tests of the engine's caching and of the sd15 benchmark section, which
 * must not need ../shared or the real-size model. Shapes: UNet 32/64 channels over two levels with attention at
 * both (8 heads, SD 1.x's convention), context 64; VAE 32/64 channels; CLIP text encoder 64 wide, 2 layers
 * (one 64-wide head), CLIP's vocabulary of 49408 (the eos id 49407 is SD 1.x's convention), 77 positions.
 */
import type { SyntheticCheckpoint } from '../../scripts/checkpoints/synthetic-checkpoint';

export const SMALL_SD1_CHECKPOINT: Readonly<SyntheticCheckpoint> = {
  unet: {
    inChannels: 4,
    outChannels: 4,
    modelChannels: 32,
    channelMult: [1, 2],
    numResBlocks: 1,
    attentionLevels: [0, 1],
    transformerDepth: 1,
    contextDim: 64,
    useLinearInTransformer: false,
  },
  vae: { ch: 32, chMult: [1, 2], numResBlocks: 1, zChannels: 4, quantConv: true },
  textEncoders: [{ prefix: 'cond_stage_model.transformer.', arch: { layout: 'transformers', hidden: 64, layers: 2, mlp: 128, vocab: 49408, positions: 77 } }],
  dtype: 'F16',
  seed: 7,
};
