/**
 * The FLUX.1 transformer the `flux` bench section measures: FLUX.1's real widths (3072 = 24 heads × 128, MLP
 * 12288, T5 context 4096, CLIP pooled 768, 256-channel timestep embedding, RoPE axes [16, 56, 56]) at reduced depth
 * (2 double- + 4 single-stream blocks instead of 19 + 38), so one step's cost per block and the conversion's memory
 * behaviour are FLUX.1's while the whole model fits a small host. `--flux-width` scales the width down (heads of
 * 128 kept) for hosts that cannot hold even that.
 */
import type { FluxConfig } from '../../../gpu-service/src/checkpoints/detect/flux-config';

/** The measured architecture. */
export interface FluxBenchShape {
  hiddenSize: number;
  depth: number;
  depthSingleBlocks: number;
  /** Image side in pixels (square) and the T5 tokens (FLUX.1-schnell's max_sequence_length 256). */
  size: number;
  textTokens: number;
}

/** issue 16's benchmark model: 2 double + 4 single blocks at FLUX.1's width, 512², 256 text tokens. */
export const FLUX_BENCH_SHAPE: Readonly<FluxBenchShape> = { hiddenSize: 3072, depth: 2, depthSingleBlocks: 4, size: 512, textTokens: 256 };

/** The FluxConfig fields fluxTensorShapes needs for a shape (schnell style: no guidance input). */
export function fluxBenchConfig(shape: FluxBenchShape): Parameters<typeof import('../../../gpu-service/src/checkpoints/detect/flux-config').fluxTensorShapes>[0] & Pick<FluxConfig, 'heads'> {
  if (shape.hiddenSize % 128 !== 0) throw new Error(`--flux-width must be a multiple of 128 (heads of 128), got ${shape.hiddenSize}`);
  return {
    hiddenSize: shape.hiddenSize,
    heads: shape.hiddenSize / 128,
    headDim: 128,
    depth: shape.depth,
    depthSingleBlocks: shape.depthSingleBlocks,
    inChannels: 64,
    outChannels: 64,
    contextDim: 4096,
    pooledDim: 768,
    timestepEmbedDim: 256,
    mlpHiddenDim: 4 * shape.hiddenSize,
    guidanceEmbed: false,
    qkvBias: true,
  };
}
