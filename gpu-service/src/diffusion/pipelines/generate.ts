/**
 * The text-to-image pipeline, read top to bottom as diffusers' numbered steps:
 * check inputs → encode prompt → sigmas → prepare latents → denoising loop → decode.
 * Image i of a job uses seed `seed + i` with its own noise generator, so it is the same whether it was
 * made alone or in a batch.
 */
import type { GenerationJob } from '../../../../shared/src/generation-job';
import type { DiffusionModel } from '../../models/diffusion-model';
import { createCfgDenoiser } from '../cfg-denoiser';
import { createNormalGenerator } from '../rng';
import { getSampler, createIidNoise, createBrownianTreeNoise } from '../samplers';
import type { Tensor } from '../tensor';
import { buildSigmas } from '../schedules';
import { encodePromptPair } from '../text-conditioning';
import { decodeLatents } from '../vae';

/** Progress of the denoising loop, reported after every step. */
export interface StepProgress {
  /** 1-based count of completed steps. */
  step: number;
  total: number;
  elapsedSeconds: number;
  etaSeconds: number;
  /** Latest x0 estimate, float [B, C, h, w] in UNet latent space (for previews). */
  denoised: Tensor;
}

export interface GenerateHooks {
  onStep?: (p: StepProgress) => void | Promise<void>;
  /** Aborting stops the job between two steps; generate() then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** One decoded image. */
export interface DecodedImage {
  index: number;
  seed: number;
  /** RGB interleaved, width × height pixels. */
  rgb: Uint8Array;
  width: number;
  height: number;
}

/** Error for a job the model cannot run; `param` names the job field. */
export class JobInputError extends Error {
  constructor(
    readonly param: string,
    message: string,
  ) {
    super(message);
    this.name = 'JobInputError';
  }
}

/**
 * Run a txt2img GenerationJob on a loaded model.
 * @throws JobInputError for a job this model cannot serve (size, sampler, schedule names);
 *         the signal's reason when aborted.
 */
export async function generate(model: DiffusionModel, job: GenerationJob, hooks: GenerateHooks = {}): Promise<DecodedImage[]> {
  // 1. Check inputs.
  if (job.width * job.height > model.maxPixels) {
    throw new JobInputError('size', `${job.width}x${job.height} exceeds ${model.name}'s limit of ${model.maxPixels} pixels`);
  }
  if (job.mode !== 'txt2img') throw new JobInputError('mode', `mode ${job.mode} is not supported yet`);
  if (model.unetInChannels !== model.latentChannels) {
    throw new JobInputError('model', `${model.name} is an inpainting model; it needs mode "inpaint" with an image and a mask`);
  }
  let sampler;
  try {
    sampler = getSampler(job.sampler);
  } catch (err) {
    throw new JobInputError('sampler', (err as Error).message);
  }
  // 2. Encode prompt and negative prompt (same chunk count), one copy per image.
  const B = job.batch_size;
  const { cond, uncond } = await encodePromptPair(model, job.prompt, job.negative_prompt, job.clip_skip);
  const repeat = (src: Float32Array) => {
    const out = new Float32Array(src.length * B);
    for (let i = 0; i < B; i++) out.set(src, i * src.length);
    return out;
  };
  // 3. Sigmas.
  let sigmas: Float64Array;
  try {
    sigmas = buildSigmas(model.schedule, job.scheduler, job.steps, { discardPenultimate: job.discard_penultimate_sigma });
  } catch (err) {
    throw new JobInputError('scheduler', (err as Error).message);
  }
  // 4. Prepare latents: x_T = σ_0 · n with n from each image's own generator (k-diffusion / A1111 convention).
  const h = job.height / 8;
  const w = job.width / 8;
  const perImage = model.latentChannels * h * w;
  const seeds = Array.from({ length: B }, (_, i) => job.seed + i);
  const generators = seeds.map((s) => createNormalGenerator(job.rng, s));
  const x = new Float32Array(B * perImage);
  generators.forEach((g, i) => {
    const n = g.randn(perImage);
    for (let k = 0; k < perImage; k++) x[i * perImage + k] = n[k] * sigmas[0];
  });
  // 5. Denoising loop.
  const denoise = createCfgDenoiser({
    model,
    batch: B,
    latentHeight: h,
    latentWidth: w,
    cond: repeat(cond.hidden),
    uncond: repeat(uncond.hidden),
    tokens: cond.tokens,
    cfgScales: seeds.map(() => job.cfg_scale),
  });
  const positive = Array.from(sigmas).filter((s) => s > 0);
  const noise =
    sampler.defaultNoise === 'brownian'
      ? createBrownianTreeNoise({ seeds, perImageNumel: perImage, sigmaMin: Math.min(...positive), sigmaMax: Math.max(...positive) })
      : createIidNoise(generators, perImage);
  const started = performance.now();
  const latents = await sampler.sample(denoise, x, sigmas, noise, {
    ...sampler.defaultOptions,
    ...job.sampler_options,
    signal: hooks.signal,
    onStep: async (info) => {
      if (!hooks.onStep) return;
      const elapsedSeconds = (performance.now() - started) / 1000;
      const step = info.i + 1;
      await hooks.onStep({
        step,
        total: info.total,
        elapsedSeconds,
        etaSeconds: (elapsedSeconds / step) * (info.total - step),
        denoised: info.denoised,
      });
    },
  });
  hooks.signal?.throwIfAborted();
  // 6. Decode.
  const decoded = await decodeLatents(model, latents, B, h, w);
  return decoded.rgb.map((rgb, index) => ({ index, seed: seeds[index], rgb, width: decoded.width, height: decoded.height }));
}
