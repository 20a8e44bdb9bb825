/**
 * VAE decode / encode through the model's ONNX exports. Latents handed to the UNet are the VAE's latents
 * times `scaling_factor` (minus `shift_factor`), both read from the model's config (diffusers convention).
 */
import type { DiffusionModel } from '../models/diffusion-model';

/**
 * Decode latents to 8-bit RGB.
 * @param latents float32 [B, C, h, w] in UNet (scaled) space.
 * @returns one Uint8Array per image, RGB interleaved, (8h) × (8w) pixels, plus the pixel size.
 */
export async function decodeLatents(
  model: DiffusionModel,
  latents: ArrayLike<number>,
  batch: number,
  latentHeight: number,
  latentWidth: number,
): Promise<{ rgb: Uint8Array[]; width: number; height: number }> {
  const dec = model.vaeDecoder;
  const input = dec.findInput('latent_sample') ?? dec.inputs[0];
  const plane = model.latentChannels * latentHeight * latentWidth;
  const outName = (dec.findOutput('sample') ?? dec.outputs[0]).name;
  const rgb: Uint8Array[] = [];
  let width = 0;
  let height = 0;
  // One image per run keeps peak memory flat for large decodes.
  for (let i = 0; i < batch; i++) {
    const z = new Float32Array(plane);
    for (let k = 0; k < plane; k++) z[k] = latents[i * plane + k] / model.scalingFactor + model.shiftFactor;
    const out = await dec.run({ [input.name]: { data: z, dims: [1, model.latentChannels, latentHeight, latentWidth] } }, [outName]);
    const { data, dims } = out[outName];
    height = dims[2];
    width = dims[3];
    rgb.push(chwToRgb8(data, height, width));
  }
  return { rgb, width, height };
}

/** float [3, H, W] in [−1, 1] → RGB interleaved uint8 (round half up, clamped). */
export function chwToRgb8(data: Float32Array, height: number, width: number): Uint8Array {
  const n = height * width;
  const out = new Uint8Array(n * 3);
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < n; p++) {
      const v = (data[c * n + p] + 1) * 127.5;
      out[p * 3 + c] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
    }
  }
  return out;
}

/**
 * Encode RGB images to latents (the posterior mean), scaled for the UNet.
 * @param rgb one RGB interleaved Uint8Array per image, width × height pixels (multiples of 8).
 * @returns float32 [B, C, height/8, width/8].
 * @throws Error when the model has no VAE encoder export.
 */
export async function encodeImages(model: DiffusionModel, rgb: Uint8Array[], width: number, height: number): Promise<Float32Array> {
  const enc = model.vaeEncoder;
  if (!enc) throw new Error(`model ${model.name} has no vae_encoder; img2img and inpainting need one`);
  const input = enc.findInput('sample') ?? enc.inputs[0];
  const outName = (enc.findOutput('latent_sample') ?? enc.outputs[0]).name;
  const n = width * height;
  const plane = model.latentChannels * (height / 8) * (width / 8);
  const latents = new Float32Array(rgb.length * plane);
  for (let i = 0; i < rgb.length; i++) {
    const chw = new Float32Array(3 * n);
    for (let p = 0; p < n; p++) for (let c = 0; c < 3; c++) chw[c * n + p] = rgb[i][p * 3 + c] / 127.5 - 1;
    const out = await enc.run({ [input.name]: { data: chw, dims: [1, 3, height, width] } }, [outName]);
    const z = out[outName].data;
    for (let k = 0; k < plane; k++) latents[i * plane + k] = (z[k] - model.shiftFactor) * model.scalingFactor;
  }
  return latents;
}
