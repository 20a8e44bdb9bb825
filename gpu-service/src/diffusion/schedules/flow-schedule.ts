/**
 * Noise tables of flow-matching models (rectified flow: x_σ = (1 − σ)·x0 + σ·noise, σ = t ∈ (0, 1]) in the shape
 * every schedule of this folder reads (types.ts `ModelSchedule`), as ComfyUI builds them
 * (comfy/model_sampling.py `ModelSamplingDiscreteFlow`, `ModelSamplingFlux`): entry t = 0..T−1 is the shifted
 * σ((t + 1)/T), rounded to float32, with
 * - static shift s (diffusers FlowMatchEulerDiscreteScheduler `shift`, SD 3.x 3.0, FLUX.1-schnell 1.0):
 *   σ' = s·σ / (1 + (s − 1)·σ);
 * - dynamic shifting (`use_dynamic_shifting`, FLUX.1-dev): μ linear in the image's token count,
 *   μ = base_shift + (max_shift − base_shift)·(n − base_image_seq_len)/(max_image_seq_len − base_image_seq_len)
 *   (diffusers `calculate_shift`, n = (H/16)·(W/16)), and σ' = e^μ / (e^μ + (1/σ − 1)) (`time_shift`
 *   "exponential", ComfyUI `flux_time_shift` with σ = 1).
 * `simple` over this table for N steps gives σ'(1), σ'(1 − 1/N), …, σ'(1/N), 0: the sigmas diffusers'
 * FluxPipeline / StableDiffusion3Pipeline run (linspace(1, 1/N, N), shifted, 0 appended) exactly when N divides
 * 1000 (4, 8, 10, 20, 25, 50, …); otherwise ComfyUI's index ⌊k·1000/N⌋ lands within one table entry (1/1000 in t).
 */
import type { FlowSchedulerConfig } from '../../checkpoints/flow-spec';
import type { ModelSchedule } from './types';

/**
 * diffusers `calculate_shift`: μ for an image of `imageSeqLen` packed tokens.
 * @param imageSeqLen (H/16)·(W/16) for H × W pixels (FLUX: 8× VAE, 2×2 packing).
 */
export function flowDynamicMu(config: Pick<FlowSchedulerConfig, 'base_shift' | 'max_shift' | 'base_image_seq_len' | 'max_image_seq_len'>, imageSeqLen: number): number {
  const m = (config.max_shift - config.base_shift) / (config.max_image_seq_len - config.base_image_seq_len);
  const b = config.base_shift - m * config.base_image_seq_len;
  return imageSeqLen * m + b;
}

/**
 * The shifted σ of an unshifted t ∈ (0, 1] (float64).
 * @param mu μ for dynamic shifting (required when the config uses it).
 * @throws RangeError when the config shifts dynamically and no μ is given.
 */
export function shiftSigma(config: Pick<FlowSchedulerConfig, 'shift' | 'use_dynamic_shifting'>, t: number, mu?: number): number {
  if (config.use_dynamic_shifting) {
    if (mu === undefined) throw new RangeError('dynamic shifting needs the image size (mu)');
    return Math.exp(mu) / (Math.exp(mu) + (1 / t - 1));
  }
  return (config.shift * t) / (1 + (config.shift - 1) * t);
}

/**
 * The model schedule of a flow model for one image size.
 * @param width, height image size in pixels (only read with dynamic shifting).
 * @returns ascending float32-rounded σ table of num_train_timesteps entries ending at 1; `alphasCumprod` is
 *   1/(1 + σ²) (the variance-exploding σ the table entries would have), `predictionType` 'flow'.
 */
export function flowModelSchedule(config: FlowSchedulerConfig, width: number, height: number): ModelSchedule {
  const T = config.num_train_timesteps;
  const mu = config.use_dynamic_shifting ? flowDynamicMu(config, Math.floor(height / 16) * Math.floor(width / 16)) : undefined;
  const sigmas = new Float64Array(T);
  const alphasCumprod = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    sigmas[t] = Math.fround(shiftSigma(config, (t + 1) / T, mu));
    alphasCumprod[t] = 1 / (1 + sigmas[t] * sigmas[t]);
  }
  return { alphasCumprod, sigmas, sigmaMin: sigmas[0], sigmaMax: sigmas[T - 1], numTrainTimesteps: T, predictionType: 'flow' };
}
