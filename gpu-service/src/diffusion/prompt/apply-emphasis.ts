/**
 * AUTOMATIC1111's "Original" emphasis (stable-diffusion-webui, modules/sd_emphasis.py `EmphasisOriginal`):
 *
 *   original_mean = z.mean()
 *   z = z * multipliers[..., None]
 *   z = z * (original_mean / z.mean())
 *
 * i.e. each token's hidden vector is scaled by its weight, then the whole chunk is rescaled so the mean over
 * all its elements is what it was. (The reference comments that restoring the mean "is likely not correct,
 * but it seems to work well to prevent artifacts".)
 */

/**
 * Apply emphasis weights to one chunk of text-encoder hidden states.
 * @param hidden float32 [tokens, hiddenSize], row-major (one chunk, e.g. 77 × 768); not modified
 * @param weights one multiplier per token (length `tokens`), 1.0 for bos/eos/padding
 * @param tokens number of token positions in the chunk
 * @param hiddenSize width of one hidden vector
 * @returns a new float32 [tokens, hiddenSize]. Means are taken in float64. When the weighted chunk's mean is
 *   0 (or not finite) the mean cannot be restored and the weighted values are returned as they are.
 * @throws RangeError when hidden.length ≠ tokens × hiddenSize or weights.length ≠ tokens
 * @see https://github.com/AUTOMATIC1111/stable-diffusion-webui/blob/master/modules/sd_emphasis.py
 */
export function applyEmphasis(hidden: Float32Array, weights: readonly number[], tokens: number, hiddenSize: number): Float32Array {
  if (hidden.length !== tokens * hiddenSize) {
    throw new RangeError(`hidden has ${hidden.length} values, expected tokens × hiddenSize = ${tokens} × ${hiddenSize}`);
  }
  if (weights.length !== tokens) throw new RangeError(`weights has ${weights.length} entries, expected ${tokens}`);
  const out = new Float32Array(hidden.length);
  if (weights.every((w) => w === 1)) {
    out.set(hidden);
    return out;
  }
  let originalSum = 0;
  let weightedSum = 0;
  const weighted = new Float64Array(hidden.length);
  for (let t = 0; t < tokens; t++) {
    const w = weights[t];
    for (let h = t * hiddenSize, end = h + hiddenSize; h < end; h++) {
      originalSum += hidden[h];
      weighted[h] = hidden[h] * w;
      weightedSum += weighted[h];
    }
  }
  const scale = originalSum / weightedSum;
  const rescale = weightedSum !== 0 && Number.isFinite(scale);
  for (let i = 0; i < weighted.length; i++) out[i] = rescale ? weighted[i] * scale : weighted[i];
  return out;
}
