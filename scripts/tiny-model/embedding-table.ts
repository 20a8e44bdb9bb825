/**
 * The tiny text encoder's weights: one embedding table per "layer" and the readout matrix the
 * UNet uses to turn summed hidden states into the latent mean mu.
 *
 * Hidden layout (H = TINY_HIDDEN_SIZE):
 *   dims 0..3  colour words: their SCALED latent colour (vae-maps.ts `tinyColourLatent`); else 0
 *   dim  4     "count": 1 for colour words, else 0
 *   dims 5..H−1 ordinary tokens: a deterministic pattern, uniform in [−1, 1]; colour words 0
 * `<|startoftext|>` and `<|endoftext|>` (= padding) rows are all zero, so padding never matters.
 *
 * Layer k (hidden_states.k, k = 0 … TINY_NUM_LAYERS) blends colours toward grey and scales the
 * pattern by c_k = 1 − TINY_LAYER_DESATURATION·(TINY_NUM_LAYERS − k); the last layer is
 * last_hidden_state. See closed-form.ts for how the UNet reads these rows.
 */
import {
  TINY_COLOURS,
  TINY_COLOUR_DIMS,
  TINY_COUNT_DIM,
  TINY_HIDDEN_SIZE,
  TINY_LAYER_DESATURATION,
  TINY_NUM_LAYERS,
  TINY_PATTERN_READOUT_SCALE,
  TINY_PATTERN_SEED,
  TINY_PATTERN_START,
} from './constants';
import { createMulberry32 } from './prng';
import { BOS_TOKEN, EOS_TOKEN } from './tokenizer-files';
import { tinyColourLatent, tinyGreyLatent } from './vae-maps';

/** Number of readout outputs: 4 colour-sum dims + 1 count. */
export const TINY_READOUT_OUTPUTS = TINY_COLOUR_DIMS + 1;

/**
 * Readout R, float64 [H, 5] row-major: (Σ_tokens hidden) · R = [colour sum (4), count (1)].
 * Rows 0..3 are the identity onto the colour sum, row 4 onto the count, and the pattern rows
 * 5..H−1 add a small deterministic tint (entries uniform in ±TINY_PATTERN_READOUT_SCALE) to the
 * colour sum only.
 */
export function tinyReadoutMatrix(): Float64Array {
  const r = new Float64Array(TINY_HIDDEN_SIZE * TINY_READOUT_OUTPUTS);
  for (let d = 0; d < TINY_COLOUR_DIMS; d++) r[d * TINY_READOUT_OUTPUTS + d] = 1;
  r[TINY_COUNT_DIM * TINY_READOUT_OUTPUTS + TINY_COLOUR_DIMS] = 1;
  const rand = createMulberry32(TINY_PATTERN_SEED);
  for (let d = TINY_PATTERN_START; d < TINY_HIDDEN_SIZE; d++) {
    for (let c = 0; c < TINY_COLOUR_DIMS; c++) {
      r[d * TINY_READOUT_OUTPUTS + c] = Math.fround((2 * rand() - 1) * TINY_PATTERN_READOUT_SCALE);
    }
  }
  return r;
}

/** c_k, the colour/pattern strength of layer k (1 for the last layer). */
export function tinyLayerStrength(layer: number): number {
  return 1 - TINY_LAYER_DESATURATION * (TINY_NUM_LAYERS - layer);
}

/**
 * Embedding tables for hidden_states.0 … hidden_states.TINY_NUM_LAYERS, each float32
 * [vocab.length, H] row-major (the last is last_hidden_state).
 *
 * @param vocab token strings by id (tokenizer-files.ts `buildTinyTokenizer().vocab`).
 */
export function tinyEmbeddingTables(vocab: readonly string[]): Float32Array[] {
  const h = TINY_HIDDEN_SIZE;
  const grey = tinyGreyLatent();
  const colourOf = new Map<string, number[]>();
  for (const [word, rgb] of Object.entries(TINY_COLOURS)) colourOf.set(`${word}</w>`, tinyColourLatent(rgb));
  const rand = createMulberry32(TINY_PATTERN_SEED ^ 0x5eed);
  const base = new Float64Array(vocab.length * h);
  const isColour = new Uint8Array(vocab.length);
  vocab.forEach((token, id) => {
    const row = id * h;
    if (token === BOS_TOKEN || token === EOS_TOKEN) return;
    const colour = colourOf.get(token);
    if (colour) {
      isColour[id] = 1;
      for (let d = 0; d < TINY_COLOUR_DIMS; d++) base[row + d] = colour[d];
      base[row + TINY_COUNT_DIM] = 1;
    } else {
      for (let d = TINY_PATTERN_START; d < h; d++) base[row + d] = 2 * rand() - 1;
    }
  });
  const tables: Float32Array[] = [];
  for (let k = 0; k <= TINY_NUM_LAYERS; k++) {
    const c = tinyLayerStrength(k);
    const table = new Float32Array(base.length);
    for (let id = 0; id < vocab.length; id++) {
      const row = id * h;
      if (isColour[id]) {
        for (let d = 0; d < TINY_COLOUR_DIMS; d++) table[row + d] = grey[d] + c * (base[row + d] - grey[d]);
        table[row + TINY_COUNT_DIM] = 1;
      } else {
        for (let d = TINY_PATTERN_START; d < h; d++) table[row + d] = c * base[row + d];
      }
    }
    tables.push(table);
  }
  return tables;
}
