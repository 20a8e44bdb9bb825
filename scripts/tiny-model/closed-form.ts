/**
 * The tiny model's networks as closed-form float64 maths: what the ONNX graphs compute, written
 * independently of them (tests compare the two, and pipeline tests can use the exact denoiser).
 *
 * Data model (scripts/tiny-model/README.md): latents x0 are Gaussian N(mu(text), Σ) in the UNet's scaled
 * latent space, Σ = s²·I + (S² − s²)·u·uᵀ per channel (s = TINY_DATA_STD pixel to pixel, S = TINY_MEAN_STD
 * for the image's mean colour, u = 1/√N); below, the per-element part. With the VP
 * forward process x_t = √ᾱ·x0 + √(1−ᾱ)·ε the exact posterior mean is
 *     x0̂ = mu + (√ᾱ·s² / (ᾱ·s² + 1 − ᾱ)) · (x_t − √ᾱ·mu)
 * and the UNet returns ε̂ = (x_t − √ᾱ·x0̂)/√(1 − ᾱ), or v̂ = √ᾱ·ε̂ − √(1 − ᾱ)·x0̂ (Salimans & Ho
 * 2022, "Progressive Distillation", v-parameterisation). In the k-diffusion VE view
 * (x = x_t·sqrt(1 + σ²), ᾱ = 1/(1 + σ²)) this is exactly D(x, σ) = mu + s²/(s² + σ²)·(x − mu).
 */
import { TINY_COLOUR_DIMS, TINY_DATA_STD, TINY_HIDDEN_SIZE, TINY_KEEP_STD, TINY_MEAN_STD } from './constants';
import { TINY_READOUT_OUTPUTS, tinyReadoutMatrix } from './embedding-table';
import { tinyAlphasCumprod, tinySigmaAt, tinySigmas } from './schedule';
import { tinyGreyLatent } from './vae-maps';

/** What the UNet predicts (scheduler_config.json `prediction_type`). */
export type TinyPredictionType = 'epsilon' | 'v_prediction';

/**
 * mu per batch item from encoder hidden states: with (S_colour, count) = (Σ_tokens h)·R,
 *     mu = (S_colour + grey·max(1 − count, 0)) / max(count, 1)
 * i.e. the mean of the colour words' latents, grey when there is none.
 *
 * @param hidden encoder_hidden_states, [batch, sequence, TINY_HIDDEN_SIZE] row-major.
 * @returns mu, float64 [batch, 4] (scaled latent space).
 */
export function tinyMu(hidden: ArrayLike<number>, batch: number, sequence: number): Float64Array {
  const h = TINY_HIDDEN_SIZE;
  const r = tinyReadoutMatrix();
  const grey = tinyGreyLatent();
  const mu = new Float64Array(batch * TINY_COLOUR_DIMS);
  for (let b = 0; b < batch; b++) {
    const sum = new Float64Array(h);
    for (let t = 0; t < sequence; t++) for (let d = 0; d < h; d++) sum[d] += hidden[(b * sequence + t) * h + d];
    const out = new Float64Array(TINY_READOUT_OUTPUTS);
    for (let d = 0; d < h; d++) for (let c = 0; c < TINY_READOUT_OUTPUTS; c++) out[c] += sum[d] * r[d * TINY_READOUT_OUTPUTS + c];
    const count = out[TINY_COLOUR_DIMS];
    for (let c = 0; c < TINY_COLOUR_DIMS; c++) {
      mu[b * TINY_COLOUR_DIMS + c] = (out[c] + grey[c] * Math.max(1 - count, 0)) / Math.max(count, 1);
    }
  }
  return mu;
}

/** Inputs of `tinyUnetOutput`, mirroring the UNet's ONNX inputs. */
export interface TinyUnetInputs {
  /** The `sample` input, [B, C, h, w] row-major; C = 4, or 9 for the inpainting variant. */
  sample: ArrayLike<number>;
  shape: readonly [number, number, number, number];
  /** The `timestep` input: one value for the whole batch or one per item (integer or fractional, 0..999). */
  timestep: ArrayLike<number>;
  /** mu per batch item, [B, 4] (from `tinyMu`). */
  mu: ArrayLike<number>;
  predictionType: TinyPredictionType;
}

/**
 * The UNet's `out_sample` in float64, [B, 4, h, w].
 *
 * ᾱ(t): the alphas_cumprod table at integer t; for fractional t, ᾱ = 1/(1 + σ(t)²) with σ(t) the
 * log-σ interpolation of schedule.ts (so a float-timestep UNet is exact through k-diffusion's
 * σ → t map). t is clamped to [0, 999].
 * 4 channels: the data covariance per channel is s²·I + (S² − s²)·u·uᵀ (u = 1/√N, S = TINY_MEAN_STD), so
 * x0̂ = mu + k(s²)·(x − √ᾱ·mu) + (k(S²) − k(s²))·mean_hw(x − √ᾱ·mu) with k(v) = √ᾱ·v/(ᾱ·v + 1 − ᾱ).
 * Inpainting (C = 9, channels = latents 4 + mask 1 + masked-image latents 4, as diffusers'
 * inpainting UNets): per latent pixel with m = clamp(mask, 0, 1) and y the masked-image latents,
 * the data mean is y + m·(mu − y) and the data variance keep² + m·(s² − keep²): where the mask
 * says keep (m = 0) the model denoises toward the original image, where it says repaint (m = 1)
 * toward the prompt's colour.
 *
 * @throws Error when the timestep count is neither 1 nor B, or C is not 4 or 9.
 */
export function tinyUnetOutput(inputs: TinyUnetInputs): Float64Array {
  const [batch, channels, height, width] = inputs.shape;
  if (channels !== 4 && channels !== 9) throw new Error(`tinyUnetOutput: ${channels} channels (expected 4 or 9)`);
  if (inputs.timestep.length !== 1 && inputs.timestep.length !== batch) {
    throw new Error(`tinyUnetOutput: ${inputs.timestep.length} timesteps for batch ${batch}`);
  }
  const table = tinyAlphasCumprod();
  const sigmas = tinySigmas();
  const plane = height * width;
  const out = new Float64Array(batch * 4 * plane);
  const shrinkOf = (variance: number, alphaBar: number) => (Math.sqrt(alphaBar) * variance) / (alphaBar * variance + 1 - alphaBar);
  for (let b = 0; b < batch; b++) {
    const t = Math.min(999, Math.max(0, inputs.timestep[inputs.timestep.length === 1 ? 0 : b]));
    const alphaBar = Number.isInteger(t) ? table[t] : 1 / (1 + tinySigmaAt(t, sigmas) ** 2);
    const sa = Math.sqrt(alphaBar);
    for (let c = 0; c < 4; c++) {
      // Mean-colour term (4-channel UNet): the spatial mean of x − √ᾱ·mu shrinks with TINY_MEAN_STD.
      let meanTerm = 0;
      if (channels === 4) {
        let sum = 0;
        for (let p = 0; p < plane; p++) sum += inputs.sample[(b * channels + c) * plane + p] - sa * inputs.mu[b * 4 + c];
        meanTerm = (shrinkOf(TINY_MEAN_STD ** 2, alphaBar) - shrinkOf(TINY_DATA_STD ** 2, alphaBar)) * (sum / plane);
      }
      for (let p = 0; p < plane; p++) {
        const x = inputs.sample[(b * channels + c) * plane + p];
        let mean = inputs.mu[b * 4 + c];
        let variance = TINY_DATA_STD ** 2;
        if (channels === 9) {
          const m = Math.min(1, Math.max(0, inputs.sample[(b * channels + 4) * plane + p]));
          const y = inputs.sample[(b * channels + 5 + c) * plane + p];
          mean = y + m * (mean - y);
          variance = TINY_KEEP_STD ** 2 + m * (TINY_DATA_STD ** 2 - TINY_KEEP_STD ** 2);
        }
        const x0 = mean + shrinkOf(variance, alphaBar) * (x - sa * mean) + meanTerm;
        const eps = (x - sa * x0) / Math.sqrt(1 - alphaBar);
        out[(b * 4 + c) * plane + p] = inputs.predictionType === 'epsilon' ? eps : sa * eps - Math.sqrt(1 - alphaBar) * x0;
      }
    }
  }
  return out;
}

/**
 * The per-element part of the tiny model's denoiser in the k-diffusion (VE) view:
 * D(x, σ) = mu + s²/(s² + σ²)·(x − mu) — the whole denoiser for latents whose spatial mean equals mu's
 * (the 4-channel model adds (S²/(S² + σ²) − s²/(s² + σ²))·mean_hw(x − mu), see tinyUnetOutput). With
 * x_T = σ_max·n and an exact ODE solver, txt2img converges to mu + s/sqrt(s² + σ_max²)·(x_T − mu) per element.
 */
export function tinyGaussianDenoiser(x: number, sigma: number, mu: number, s: number = TINY_DATA_STD): number {
  return mu + ((s * s) / (s * s + sigma * sigma)) * (x - mu);
}

/**
 * The whole denoiser of the 4-channel tiny model in the k-diffusion (VE) view, for one image's latents:
 * per channel c, D(x, σ)_c = mu_c + w(s)·(x_c − mu_c) + (w(S) − w(s))·mean_hw(x_c − mu_c), with
 * w(v) = v²/(v² + σ²), s = TINY_DATA_STD and S = TINY_MEAN_STD (the posterior mean for the covariance
 * s²·I + (S² − s²)·u·uᵀ, u = 1/√N).
 * @param x latents [channels, h, w] row-major (VE scaling: x = x0 + σ·n).
 * @param mu the data mean per channel.
 * @returns D, float64 [channels, h, w].
 */
export function tinyImageDenoiser(x: ArrayLike<number>, sigma: number, mu: ArrayLike<number>, plane: number): Float64Array {
  const w = (v: number) => (v * v) / (v * v + sigma * sigma);
  const out = new Float64Array(x.length);
  for (let c = 0; c < mu.length; c++) {
    let sum = 0;
    for (let p = 0; p < plane; p++) sum += x[c * plane + p] - mu[c];
    const meanTerm = (w(TINY_MEAN_STD) - w(TINY_DATA_STD)) * (sum / plane);
    for (let p = 0; p < plane; p++) out[c * plane + p] = tinyGaussianDenoiser(x[c * plane + p], sigma, mu[c]) + meanTerm;
  }
  return out;
}
