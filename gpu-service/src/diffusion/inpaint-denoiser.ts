/**
 * Inpainting for ordinary 4-channel UNets, kept outside the samplers (they stay pure): the denoiser is
 * wrapped so that, at every call, the known region is replaced by the source latents re-noised to the
 * current sigma, and the x0 estimate there is the source latents themselves (ComfyUI's KSamplerX0Inpaint):
 *   x_in = m·x + (1 − m)·(z0 + σ·n),   D' = m·D(x_in, σ) + (1 − m)·z0
 * with m the feathered latent mask (1 = repaint) and n a fixed noise tensor.
 */
import type { Denoiser } from './samplers/types';
import type { Tensor } from './tensor';

/**
 * @param mask float [h·w] latent mask in [0, 1], shared by every channel and image.
 * @param z0 float [B, C, h, w] source latents (UNet space). @param noise same shape, fixed N(0, 1).
 */
export function createInpaintDenoiser(inner: Denoiser, mask: Float32Array, z0: Float32Array, noise: Float32Array): Denoiser {
  const plane = mask.length;
  return async function inpaintDenoise(x: Tensor, sigma: number) {
    const xin = x instanceof Float64Array ? new Float64Array(x.length) : new Float32Array(x.length);
    for (let k = 0; k < x.length; k++) {
      const m = mask[k % plane];
      xin[k] = m * x[k] + (1 - m) * (z0[k] + sigma * noise[k]);
    }
    const out = await inner(xin, sigma);
    const blend = (d: Tensor): Tensor => {
      const r = d instanceof Float64Array ? new Float64Array(d.length) : new Float32Array(d.length);
      for (let k = 0; k < d.length; k++) {
        const m = mask[k % plane];
        r[k] = m * d[k] + (1 - m) * z0[k];
      }
      return r;
    };
    return { denoised: blend(out.denoised), ...(out.uncond ? { uncond: blend(out.uncond) } : {}) };
  };
}
