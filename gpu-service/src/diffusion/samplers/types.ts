import type { Tensor } from '../tensor';

/**
 * What one call of the denoiser returns: the x0 estimate D(x, sigma) (classifier-free guided when
 * the pipeline uses CFG) and, when the call ran an unconditional pass, that pass's own x0 estimate
 * (needed by the CFG++ samplers; they fall back to `denoised` when it is absent).
 * Both are flat [B, C, H, W] tensors of the same length and kind as the input x.
 */
export interface DenoiserOutput {
  denoised: Tensor;
  uncond?: Tensor;
}

/**
 * The k-diffusion denoiser: x (noisy latents at noise level sigma, VE scaling x = x0 + sigma*n)
 * → E[x0 | x]. sigma is never 0. The wrapper that calls the network owns the input/output scalings
 * and guidance (see docs/samplers.md §0).
 */
export type Denoiser = (x: Tensor, sigma: number) => Promise<DenoiserOutput>;

/**
 * noise(sigma, sigmaNext) → fresh i.i.d. N(0, 1) tensor shaped like the latents. The number, order
 * and arguments of the calls are part of a sampler's contract (docs/samplers.md §0): tests replay a
 * recorded sequence through this interface.
 */
export type NoiseSource = (sigma: number, sigmaNext: number) => Tensor;

/** Passed to onStep after every completed step. */
export interface StepInfo {
  /** 0-based index of the step just completed. */
  i: number;
  /** Number of steps in the schedule (sigmas.length − 1). */
  total: number;
  sigma: number;
  sigmaNext: number;
  /** Current iterate after the step. */
  x: Tensor;
  /** The latest x0 estimate (for previews). */
  denoised: Tensor;
}

/** Options shared by all samplers; each sampler documents which ones it reads. */
export interface SamplerOptions {
  /** Ancestral noise fraction η (docs/samplers.md §0.1). Default per sampler (1 for ancestral/SDE, 0 for ODE). */
  eta?: number;
  /** Scale of every injected noise term. Default 1. */
  s_noise?: number;
  /** Karras churn (euler, heun, dpm_2 only; §0.2). Defaults 0, 0, Infinity. */
  s_churn?: number;
  s_tmin?: number;
  s_tmax?: number;
  /** Fresh standard normals for churn (not the noise source). Required only when s_churn > 0. */
  randn?: () => Tensor;
  /** Algorithm variant flags, e.g. { final: 'denoise' } for lms/ipndm, { flavor: 'sdcpp' } for ipndm_v,
   * { solver_type: 'heun' } for dpmpp_2m_sde, { variant: 'bh2' } for uni_pc. */
  variant?: Record<string, string>;
  /** Called after every step (awaited), for progress and previews. */
  onStep?: (info: StepInfo) => void | Promise<void>;
  /** Checked between steps; an aborted signal makes the sampler throw signal.reason. */
  signal?: AbortSignal;
}

/**
 * A sampler: a pure function of (denoiser, initial latents, sigmas, noise source, options) that
 * returns the final latents. sigmas: N+1 strictly decreasing values, usually ending in 0.
 * It never mutates its inputs and never imports onnxruntime.
 */
export type Sampler = (
  denoise: Denoiser,
  x: Tensor,
  sigmas: ArrayLike<number>,
  noise: NoiseSource,
  options?: SamplerOptions,
) => Promise<Tensor>;
