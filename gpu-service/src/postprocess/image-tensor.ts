/**
 * 8-bit interleaved RGB ↔ the NCHW float tensors post-processing networks take, with per-channel normalisation
 * x = (v / 255 − mean) / std (torchvision `Normalize` on `ToTensor` output).
 */

/** An image between stages: interleaved RGB bytes and, once a matting stage ran, one alpha byte per pixel. */
export interface StageImage {
  /** RGB interleaved, width × height pixels. */
  rgb: Uint8Array;
  width: number;
  height: number;
  /** Alpha, width × height bytes (255 = opaque), when the image has one. */
  alpha?: Uint8Array;
}

/**
 * RGB bytes → float32 [1, 3, height, width].
 * @param mean, std per channel, applied to v / 255.
 */
export function rgbToNchw(rgb: Uint8Array, width: number, height: number, mean: readonly number[], std: readonly number[]): Float32Array {
  const n = width * height;
  const out = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) {
    const m = mean[c];
    const s = std[c];
    for (let p = 0; p < n; p++) out[c * n + p] = (rgb[p * 3 + c] / 255 - m) / s;
  }
  return out;
}

/**
 * float [1, 3, height, width] → RGB bytes: v = x·std + mean, clamped to [0, 1], rounded to the nearest of 255ths.
 */
export function nchwToRgb(data: ArrayLike<number>, width: number, height: number, mean: readonly number[] = [0, 0, 0], std: readonly number[] = [1, 1, 1]): Uint8Array {
  const n = width * height;
  const out = new Uint8Array(3 * n);
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < n; p++) {
      const v = data[c * n + p] * std[c] + mean[c];
      out[p * 3 + c] = Math.round(Math.min(1, Math.max(0, v)) * 255);
    }
  }
  return out;
}
