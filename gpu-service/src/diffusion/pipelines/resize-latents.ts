/**
 * Resize latents (hires fix "latent" upscalers): bilinear with half-pixel centres (PyTorch
 * F.interpolate(mode='bilinear', align_corners=False)) or nearest-exact.
 * @param src float [B, C, h, w]. @returns float32 [B, C, th, tw].
 */
export function resizeLatents(
  src: ArrayLike<number>,
  batch: number,
  channels: number,
  h: number,
  w: number,
  th: number,
  tw: number,
  mode: 'bilinear' | 'nearest',
): Float32Array {
  const out = new Float32Array(batch * channels * th * tw);
  const sy = h / th;
  const sx = w / tw;
  for (let bc = 0; bc < batch * channels; bc++) {
    const s = bc * h * w;
    const d = bc * th * tw;
    for (let y = 0; y < th; y++) {
      for (let x = 0; x < tw; x++) {
        if (mode === 'nearest') {
          const yy = Math.min(h - 1, Math.floor((y + 0.5) * sy));
          const xx = Math.min(w - 1, Math.floor((x + 0.5) * sx));
          out[d + y * tw + x] = src[s + yy * w + xx];
          continue;
        }
        const fy = Math.max(0, (y + 0.5) * sy - 0.5);
        const fx = Math.max(0, (x + 0.5) * sx - 0.5);
        const y0 = Math.min(h - 1, Math.floor(fy));
        const x0 = Math.min(w - 1, Math.floor(fx));
        const y1 = Math.min(h - 1, y0 + 1);
        const x1 = Math.min(w - 1, x0 + 1);
        const wy = fy - y0;
        const wx = fx - x0;
        out[d + y * tw + x] =
          (1 - wy) * ((1 - wx) * src[s + y0 * w + x0] + wx * src[s + y0 * w + x1]) + wy * ((1 - wx) * src[s + y1 * w + x0] + wx * src[s + y1 * w + x1]);
      }
    }
  }
  return out;
}
