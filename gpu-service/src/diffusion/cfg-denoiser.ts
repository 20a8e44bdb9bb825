/**
 * The k-diffusion denoiser for an ε- or v-prediction UNet with classifier-free guidance
 * (docs/samplers.md §0; k-diffusion CompVisDenoiser / CompVisVDenoiser, sigma_data = 1):
 *   c_in = 1/√(σ²+1);  ε-model: D = x − σ·ε̂;  v-model: D = x/(σ²+1) − σ/√(σ²+1)·v̂.
 * Guidance: D = D_u + cfg_scale·(D_c − D_u), per image; the conditional and unconditional halves of the
 * whole batch go through the UNet in one run. When every image's cfg_scale is 1 the unconditional pass is
 * skipped (sd-turbo / LCM style).
 */
import type { DiffusionModel } from '../models/diffusion-model';
import type { Denoiser } from './samplers/types';
import type { Tensor } from './tensor';
import { runUnet } from './unet-runner';

export interface CfgDenoiserOptions {
  model: DiffusionModel;
  /** Images in the batch. */
  batch: number;
  /** Latent height and width (pixels / 8). */
  latentHeight: number;
  latentWidth: number;
  /** Conditional hidden states, float32 [B, T, H]. */
  cond: Float32Array;
  /** Unconditional (negative prompt) hidden states, float32 [B, T, H]. */
  uncond: Float32Array;
  tokens: number;
  /** cfg_scale per image (length B). */
  cfgScales: number[];
  /**
   * SDXL added conditioning per image: pooled text_embeds float32 [B, P] and time ids float32 [B, n], for the
   * conditional and unconditional halves.
   */
  added?: { cond: { textEmbeds: Float32Array; timeIds: Float32Array }; uncond: { textEmbeds: Float32Array; timeIds: Float32Array } };
  /** Extra UNet channels per image for inpainting UNets (mask + masked-image latents), float32 [B, C_in − 4, h, w]. */
  extraChannels?: Float32Array;
}

/**
 * Build the guided denoiser used by every sampler.
 * @returns Denoiser whose output carries `uncond` (the unguided x0 estimate) when an unconditional pass ran.
 */
export function createCfgDenoiser(opts: CfgDenoiserOptions): Denoiser {
  const { model, batch: B, latentHeight: h, latentWidth: w, tokens: T } = opts;
  const C = model.latentChannels;
  const Cin = model.unetInChannels;
  const plane = C * h * w;
  const extraPlane = (Cin - C) * h * w;
  if (Cin !== C && (!opts.extraChannels || opts.extraChannels.length !== B * extraPlane)) {
    throw new Error(`${model.name}: its UNet takes ${Cin} channels; the job must supply mask and masked-image latents`);
  }
  const skipUncond = opts.cfgScales.every((s) => s === 1);
  const halves = skipUncond ? 1 : 2;
  const N = B * halves;
  const H = model.hiddenSize;
  const ehs = new Float32Array(N * T * H);
  if (skipUncond) ehs.set(opts.cond);
  else {
    ehs.set(opts.uncond, 0);
    ehs.set(opts.cond, B * T * H);
  }
  const v = model.schedule.predictionType === 'v_prediction';
  // Same half order as encoder_hidden_states: [uncond, cond], or cond alone.
  const added = opts.added
    ? {
        textEmbeds: skipUncond ? opts.added.cond.textEmbeds : concat(opts.added.uncond.textEmbeds, opts.added.cond.textEmbeds),
        timeIds: skipUncond ? opts.added.cond.timeIds : concat(opts.added.uncond.timeIds, opts.added.cond.timeIds),
      }
    : undefined;

  return async function cfgDenoise(x: Tensor, sigma: number) {
    const cIn = 1 / Math.sqrt(sigma * sigma + 1);
    const sample = new Float32Array(N * Cin * h * w);
    for (let half = 0; half < halves; half++) {
      for (let i = 0; i < B; i++) {
        const dst = (half * B + i) * Cin * h * w;
        for (let k = 0; k < plane; k++) sample[dst + k] = x[i * plane + k] * cIn;
        if (extraPlane) sample.set(opts.extraChannels!.subarray(i * extraPlane, (i + 1) * extraPlane), dst + plane);
      }
    }
    const out = await runUnet(model, { sample, batch: N, sigma, encoderHiddenStates: ehs, tokens: T, added }, h, w);
    // x0 estimate from the raw output for one half.
    const skip = v ? 1 / (sigma * sigma + 1) : 1;
    const outScale = v ? -sigma * cIn : -sigma;
    const toDenoised = (halfIndex: number): Tensor => {
      const d = x instanceof Float64Array ? new Float64Array(x.length) : new Float32Array(x.length);
      const base = halfIndex * B * plane;
      for (let k = 0; k < x.length; k++) d[k] = x[k] * skip + out[base + k] * outScale;
      return d;
    };
    if (skipUncond) return { denoised: toDenoised(0) };
    const uncond = toDenoised(0);
    const cond = toDenoised(1);
    const guided = x instanceof Float64Array ? new Float64Array(x.length) : new Float32Array(x.length);
    for (let i = 0; i < B; i++) {
      const s = opts.cfgScales[i];
      for (let k = i * plane; k < (i + 1) * plane; k++) guided[k] = uncond[k] + s * (cond[k] - uncond[k]);
    }
    return { denoised: guided, uncond };
  };
}

function concat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
