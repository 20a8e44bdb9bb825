/**
 * The generation pipeline for txt2img, img2img and inpainting (with an optional hires-fix second pass),
 * read top to bottom as diffusers' numbered steps:
 * check inputs → encode prompt → prepare source latents → denoising pass(es) → decode → composite.
 * Image i of a job uses seed `seed + i` with its own noise generator, so it is the same whether it was
 * made alone or in a batch.
 */
import { seedAt, type Seed } from '@image-api/shared/seed';
import sharp from 'sharp';
import type { GenerationJob } from '@image-api/shared/generation-job';
import type { DiffusionModel } from '../../models/diffusion-model';
import { createCfgDenoiser } from '../cfg-denoiser';
import { createInpaintDenoiser } from '../inpaint-denoiser';
import { createNormalGenerator } from '../rng';
import type { NormalGenerator } from '../rng/types';
import { getSampler, createIidNoise, createBrownianTreeNoise } from '../samplers';
import type { Tensor } from '../tensor';
import { buildSigmas } from '../schedules';
import { encodePromptPair } from '../text-conditioning';
import { decodeLatents, encodeImages } from '../vae';
import { latentMask, loadInputImage, loadRepaintMask } from './input-images';
import { JobInputError } from './job-input-error';
import { resizeLatents } from './resize-latents';
import { addedConditioning, type SdxlMicroConditioning } from '../sdxl/time-ids';
import { generateFlow } from './flow-generate';
import { upscaleToTarget, type ImageUpscaler } from '../../postprocess/hires-upscale';

export { JobInputError } from './job-input-error';

/** Progress of the denoising loop, reported after every step (steps of both hires passes counted). */
export interface StepProgress {
  /** 1-based count of completed steps. */
  step: number;
  total: number;
  elapsedSeconds: number;
  etaSeconds: number;
  /** Latest x0 estimate, float [B, C, h, w] in UNet latent space (for previews), and its latent size. */
  denoised: Tensor;
  latentHeight: number;
  latentWidth: number;
}

/** Models a job uses besides its own. */
export interface GenerateModels {
  /** The SDXL refiner for `refiner_switch_at` > 0 (checked by checkRefiner). */
  refiner?: DiffusionModel;
  /** The upscaler model for `hires_fix.upscaler` "model" (postprocess/hires-upscale.ts). */
  upscaler?: ImageUpscaler;
}

/**
 * Whether `refiner` can continue `base`'s latents: both SDXL (the refiner: a refiner or another SDXL base, as
 * AUTOMATIC1111 allows), the same latent channels, and neither an inpainting UNet (their extra channels do not
 * carry over).
 * @throws JobInputError naming refiner_model with the rule broken.
 */
export function checkRefiner(base: DiffusionModel, refiner: DiffusionModel): void {
  if (!base.sdxl) throw new JobInputError('refiner_model', `a refiner continues an SDXL base, and ${base.name} is not an SDXL model`);
  if (!refiner.sdxl) throw new JobInputError('refiner_model', `${refiner.name} is not an SDXL refiner (it must be an SDXL checkpoint to continue ${base.name}'s latents)`);
  if (refiner.latentChannels !== base.latentChannels) {
    throw new JobInputError('refiner_model', `${refiner.name} works on ${refiner.latentChannels} latent channels, ${base.name} on ${base.latentChannels}`);
  }
  for (const m of [base, refiner]) {
    if (m.unetInChannels !== m.latentChannels) throw new JobInputError('refiner_model', `${m.name} is an inpainting UNet; a refiner handoff needs plain UNets`);
  }
}

/**
 * Steps of an n-step pass that run on the base for refiner_switch_at s (AUTOMATIC1111 `apply_refiner` by sampling
 * steps: step i, 0-based, stays on the base while i / n < s), so s = 0.8 leaves the refiner the last 20 %.
 */
export function baseStepsBeforeSwitch(n: number, switchAt: number): number {
  let k = 0;
  while (k < n && k / n < switchAt) k++;
  return k;
}

export interface GenerateHooks {
  onStep?: (p: StepProgress) => void | Promise<void>;
  /** Aborting stops the job between two steps; generate() then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** One decoded image. */
export interface DecodedImage {
  index: number;
  seed: Seed;
  /** RGB interleaved, width × height pixels. */
  rgb: Uint8Array;
  width: number;
  height: number;
  /** Alpha, width × height bytes, once a matting stage gave the image one (postprocess/matting.ts). */
  alpha?: Uint8Array;
}

/**
 * The sigmas of a pass at denoise `strength` (docs/samplers.md §1.4):
 * - 'steps' (ComfyUI): build the schedule for ⌊steps/strength⌋ steps and keep the last steps+1 entries, so
 *   exactly `steps` steps run whatever the strength;
 * - 'scaled' (AUTOMATIC1111 / stable-diffusion.cpp): build for `steps`, t_enc = ⌊min(strength, 0.999)·steps⌋,
 *   start at index steps − t_enc − 1, so about steps × strength steps run.
 * strength ≥ 1 is the full schedule (txt2img). `ays` on an SDXL model is the SDXL table (`ays_sdxl`).
 */
export function passSigmas(job: GenerationJob, steps: number, strength: number, model: Pick<DiffusionModel, 'schedule' | 'sdxl'>): Float64Array {
  // Align Your Steps has one table per family: SDXL models get the SDXL one for 'ays'.
  const scheduler = job.scheduler === 'ays' && model.sdxl ? 'ays_sdxl' : job.scheduler;
  const build = (n: number) => buildSigmas(model.schedule, scheduler, n, { discardPenultimate: job.discard_penultimate_sigma });
  try {
    if (strength >= 1) return build(steps);
    if (job.strength_schedule === 'steps') {
      const full = build(Math.max(steps, Math.floor(steps / strength)));
      return full.slice(Math.max(0, full.length - (steps + 1)));
    }
    const full = build(steps);
    const tEnc = Math.floor(Math.min(strength, 0.999) * steps);
    return full.slice(Math.max(0, full.length - 1 - (tEnc + 1)));
  } catch (err) {
    throw new JobInputError('scheduler', (err as Error).message);
  }
}

interface PassInput {
  width: number;
  height: number;
  steps: number;
  strength: number;
  /** Source latents (UNet space) for img2img / inpaint passes, float [B, C, h, w]. */
  z0?: Float32Array;
  /** Feathered latent mask (1 = repaint) for 4-channel inpainting. */
  mask?: Float32Array;
  /** Extra UNet channels for 9-channel inpainting UNets. */
  extraChannels?: Float32Array;
  stepOffset: number;
  totalSteps: number;
}

/**
 * Check a job against a model, then run it.
 * @throws JobInputError for a job this model cannot serve (size, mode, sampler, schedule, images);
 *         the signal's reason when aborted.
 */
export async function generate(model: DiffusionModel, job: GenerationJob, hooks: GenerateHooks = {}, models: GenerateModels = {}): Promise<DecodedImage[]> {
  // Flow-matching transformers (FLUX.1, SD 3.x) have their own pipeline after the shared size and mode checks.
  if (model.flow) {
    checkSizeAndMode(model, job);
    return generateFlow(model, job, hooks);
  }
  // 1. Check inputs.
  const target = job.hires_fix ? { width: job.hires_fix.target_width, height: job.hires_fix.target_height } : { width: job.width, height: job.height };
  if (target.width * target.height > model.maxPixels) {
    throw new JobInputError('size', `${target.width}x${target.height} exceeds ${model.name}'s limit of ${model.maxPixels} pixels`);
  }
  const inpaintUnet = model.unetInChannels !== model.latentChannels;
  if (inpaintUnet && job.mode !== 'inpaint') {
    throw new JobInputError('model', `${model.name} is an inpainting model; it needs mode "inpaint" with an image and a mask`);
  }
  if (job.mode !== 'txt2img' && !job.init_image) throw new JobInputError('init_image', `mode ${job.mode} needs init_image`);
  if (job.mode === 'inpaint' && !job.mask) throw new JobInputError('mask', 'mode inpaint needs a mask');
  if (job.mode !== 'txt2img' && !model.vaeEncoder) throw new JobInputError('model', `${model.name} has no VAE encoder, so it cannot do ${job.mode}`);
  if (job.hires_fix && job.mode === 'inpaint') throw new JobInputError('hires_fix', 'hires_fix is not available for inpainting');
  if (job.hires_fix?.upscaler === 'model' && !models.upscaler) throw new JobInputError('hires_fix.upscale_model', 'upscaler "model" needs an upscaler model (hires_fix.upscale_model)');
  if ((job.hires_fix?.upscaler === 'lanczos' || job.hires_fix?.upscaler === 'model') && !model.vaeEncoder) {
    throw new JobInputError('hires_fix.upscaler', `${model.name} has no VAE encoder, so the upscaled image cannot be re-encoded; use a latent upscaler`);
  }
  // Distilled guidance is an input of FLUX-class networks; a UNet without one cannot use it, so it is refused
  // rather than ignored (cfg_scale is classifier-free guidance for every model).
  if (job.guidance !== undefined && !model.unet.findInput('guidance')) {
    throw new JobInputError('guidance', `${model.name} takes no distilled guidance (only FLUX-class models do); leave guidance out and use cfg_scale`);
  }
  let sampler: ReturnType<typeof getSampler>;
  try {
    sampler = getSampler(job.sampler);
  } catch (err) {
    throw new JobInputError('sampler', (err as Error).message);
  }
  const switchAt = job.refiner_switch_at ?? 0;
  const refiner = switchAt > 0 ? models.refiner : undefined;
  if (switchAt > 0 && !refiner) throw new JobInputError('refiner_model', `refiner_switch_at ${switchAt} needs a refiner model: name one in refiner_model`);
  if (refiner) checkRefiner(model, refiner);

  // 2. Encode prompt and negative prompt (same chunk count), one copy per image.
  const B = job.batch_size;
  const { cond, uncond } = await encodePromptPair(model, job.prompt, job.negative_prompt, job.clip_skip);
  const repeat = (src: Float32Array) => {
    const out = new Float32Array(src.length * B);
    for (let i = 0; i < B; i++) out.set(src, i * src.length);
    return out;
  };
  const condB = repeat(cond.hidden);
  const uncondB = repeat(uncond.hidden);
  // SDXL: pooled text_embeds per image; the time ids follow each pass's size.
  const pooled = model.sdxl ? Array.from({ length: B }, () => ({ cond: cond.pooled!, uncond: uncond.pooled! })) : undefined;
  const addedFor = (h: number, w: number) => (model.sdxl && pooled ? addedConditioning(model.sdxl.kind, pooled, h, w, microConditioningOf(job)) : undefined);
  // The refiner's own conditioning (its encoder, its empty-prompt rule, its time ids).
  const refinerText = refiner ? await encodePromptPair(refiner, job.prompt, job.negative_prompt, job.clip_skip) : undefined;
  const refinerPooled = refinerText ? Array.from({ length: B }, () => ({ cond: refinerText.cond.pooled!, uncond: refinerText.uncond.pooled! })) : undefined;
  const seeds = Array.from({ length: B }, (_, i) => seedAt(job.seed, i));
  const generators: NormalGenerator[] = seeds.map((s) => createNormalGenerator(job.rng, s));
  const started = performance.now();

  // 3. Source latents (img2img / inpaint).
  const { width, height } = job;
  let source: Uint8Array | undefined;
  let repaint: Uint8Array | undefined;
  let z0: Float32Array | undefined;
  let mask: Float32Array | undefined;
  let extraChannels: Float32Array | undefined;
  if (job.mode !== 'txt2img') {
    source = await loadInputImage(job.init_image!, width, height, 'init_image');
    z0 = await encodeImages(model, Array(B).fill(source), width, height);
  }
  if (job.mode === 'inpaint') {
    repaint = await loadRepaintMask(job.mask!, width, height, job.mask_mode);
    mask = latentMask(repaint, width, height);
    if (inpaintUnet) extraChannels = await inpaintChannels(model, source!, repaint, width, height, B);
  }

  // 4. Denoising pass(es).
  const strength = job.mode === 'txt2img' ? 1 : job.strength;
  const firstSigmas = strength > 0 ? passSigmas(job, job.steps, strength, model) : new Float64Array([0]);
  const hires = job.hires_fix;
  const hiresSteps = hires?.steps ?? job.steps;
  const hiresSigmas = hires ? passSigmas(job, hiresSteps, hires.strength, model) : undefined;
  const totalSteps = firstSigmas.length - 1 + (hiresSigmas ? hiresSigmas.length - 1 : 0);

  const runPass = async (p: PassInput, sigmas: Float64Array): Promise<Float32Array> => {
    const h = p.height / 8;
    const w = p.width / 8;
    const perImage = model.latentChannels * h * w;
    if (sigmas.length < 2) return p.z0!; // strength 0: nothing to denoise
    // x = z0 + σ_0·n (z0 = 0 for txt2img: the k-diffusion / A1111 initial latent σ_0·n).
    const x = new Float32Array(B * perImage);
    const n0 = new Float32Array(B * perImage);
    generators.forEach((g, i) => n0.set(g.randn(perImage), i * perImage));
    for (let k = 0; k < x.length; k++) x[k] = (p.z0 ? p.z0[k] : 0) + n0[k] * sigmas[0];
    const denoiserOf = (m: DiffusionModel, text: { cond: Float32Array; uncond: Float32Array; tokens: number }, added: ReturnType<typeof addedFor>, extra?: Float32Array) => {
      let d = createCfgDenoiser({
        model: m,
        batch: B,
        latentHeight: h,
        latentWidth: w,
        cond: text.cond,
        uncond: text.uncond,
        tokens: text.tokens,
        cfgScales: seeds.map(() => job.cfg_scale),
        extraChannels: extra,
        added,
      });
      if (p.mask && !extra) d = createInpaintDenoiser(d, p.mask, p.z0!, n0);
      return d;
    };
    const positive = Array.from(sigmas).filter((s) => s > 0);
    const noise =
      sampler.defaultNoise === 'brownian'
        ? createBrownianTreeNoise({ seeds, perImageNumel: perImage, sigmaMin: Math.min(...positive), sigmaMax: Math.max(...positive) })
        : createIidNoise(generators, perImage);
    const sampleSegment = (denoise: ReturnType<typeof denoiserOf>, start: Tensor, segment: Float64Array, offset: number) =>
      sampler.sample(denoise, start, segment, noise, {
        ...sampler.defaultOptions,
        ...job.sampler_options,
        signal: hooks.signal,
        onStep: async (info) => {
          if (!hooks.onStep) return;
          const elapsedSeconds = (performance.now() - started) / 1000;
          const step = p.stepOffset + offset + info.i + 1;
          await hooks.onStep({
            step,
            total: p.totalSteps,
            elapsedSeconds,
            etaSeconds: (elapsedSeconds / step) * (p.totalSteps - step),
            denoised: info.denoised,
            latentHeight: h,
            latentWidth: w,
          });
        },
      });
    // Base → refiner: the base runs sigmas[0..k], the refiner continues from the latents it reached at sigmas[k]
    // (no noise added), with the same noise source.
    const n = sigmas.length - 1;
    const k = refiner ? baseStepsBeforeSwitch(n, switchAt) : n;
    let out: Tensor = x;
    if (k > 0) out = await sampleSegment(denoiserOf(model, { cond: condB, uncond: uncondB, tokens: cond.tokens }, addedFor(p.height, p.width), p.extraChannels), x, sigmas.slice(0, k + 1), 0);
    if (refiner && refinerText && k < n) {
      hooks.signal?.throwIfAborted();
      const text = { cond: repeat(refinerText.cond.hidden), uncond: repeat(refinerText.uncond.hidden), tokens: refinerText.cond.tokens };
      const added = addedConditioning(refiner.sdxl!.kind, refinerPooled!, p.height, p.width, microConditioningOf(job));
      out = await sampleSegment(denoiserOf(refiner, text, added), out, sigmas.slice(k), k);
    }
    hooks.signal?.throwIfAborted();
    // 4-channel inpainting: the known region is exactly the source latents at the end.
    if (p.mask && !p.extraChannels) {
      for (let k = 0; k < out.length; k++) {
        const m = p.mask[k % p.mask.length];
        out[k] = m * out[k] + (1 - m) * p.z0![k];
      }
    }
    return out instanceof Float32Array ? out : Float32Array.from(out);
  };

  let latents = await runPass({ width, height, steps: job.steps, strength, z0, mask, extraChannels, stepOffset: 0, totalSteps }, firstSigmas);
  let outW = width;
  let outH = height;
  if (hires && hiresSigmas) {
    const { target_width: tw, target_height: th } = hires;
    let up: Float32Array;
    if (hires.upscaler === 'model') {
      // A1111's non-latent upscalers: decode, upscale the image with the model, re-encode for the second pass.
      const base = await decodeLatents(model, latents, B, height / 8, width / 8);
      const resized: Uint8Array[] = [];
      for (const rgb of base.rgb) resized.push((await upscaleToTarget(models.upscaler!, { rgb, width: base.width, height: base.height }, tw, th, hooks.signal)).rgb);
      up = await encodeImages(model, resized, tw, th);
    } else if (hires.upscaler === 'lanczos') {
      const base = await decodeLatents(model, latents, B, height / 8, width / 8);
      const resized = await Promise.all(
        base.rgb.map(async (rgb) =>
          new Uint8Array(
            await sharp(Buffer.from(rgb), { raw: { width: base.width, height: base.height, channels: 3 } })
              .resize(tw, th, { fit: 'fill', kernel: 'lanczos3' })
              .raw()
              .toBuffer(),
          ),
        ),
      );
      up = await encodeImages(model, resized, tw, th);
    } else {
      up = resizeLatents(latents, B, model.latentChannels, height / 8, width / 8, th / 8, tw / 8, hires.upscaler === 'latent-nearest' ? 'nearest' : 'bilinear');
    }
    latents = await runPass(
      { width: tw, height: th, steps: hiresSteps, strength: hires.strength, z0: up, stepOffset: firstSigmas.length - 1, totalSteps },
      hiresSigmas,
    );
    outW = tw;
    outH = th;
  }

  // 5. Decode, then 6. put the kept pixels back exactly (inpainting never changes a pixel outside the mask).
  const decoded = await decodeLatents(model, latents, B, outH / 8, outW / 8);
  return decoded.rgb.map((rgb, index) => {
    if (repaint && source) {
      for (let p = 0; p < repaint.length; p++) {
        if (!repaint[p]) {
          rgb[p * 3] = source[p * 3];
          rgb[p * 3 + 1] = source[p * 3 + 1];
          rgb[p * 3 + 2] = source[p * 3 + 2];
        }
      }
    }
    return { index, seed: seeds[index], rgb, width: decoded.width, height: decoded.height };
  });
}

/** The size and mode checks every model family shares. @throws JobInputError naming the field. */
function checkSizeAndMode(model: DiffusionModel, job: GenerationJob): void {
  const target = job.hires_fix ? { width: job.hires_fix.target_width, height: job.hires_fix.target_height } : { width: job.width, height: job.height };
  if (target.width * target.height > model.maxPixels) {
    throw new JobInputError('size', `${target.width}x${target.height} exceeds ${model.name}'s limit of ${model.maxPixels} pixels`);
  }
  if (job.mode !== 'txt2img' && !job.init_image) throw new JobInputError('init_image', `mode ${job.mode} needs init_image`);
  if (job.mode === 'inpaint' && !job.mask) throw new JobInputError('mask', 'mode inpaint needs a mask');
  if (job.mode !== 'txt2img' && !model.vaeEncoder) throw new JobInputError('model', `${model.name} has no VAE encoder, so it cannot do ${job.mode}`);
}

/**
 * Extra input channels of a 9-channel inpainting UNet (diffusers StableDiffusionInpaintPipeline order):
 * [mask (1, nearest-downsampled, 1 = repaint), latents of the image with the repaint area greyed (C)].
 */
async function inpaintChannels(
  model: DiffusionModel,
  source: Uint8Array,
  repaint: Uint8Array,
  width: number,
  height: number,
  batch: number,
): Promise<Float32Array> {
  const h = height / 8;
  const w = width / 8;
  const masked = Uint8Array.from(source);
  for (let p = 0; p < repaint.length; p++) if (repaint[p]) masked[p * 3] = masked[p * 3 + 1] = masked[p * 3 + 2] = 128;
  const maskedLatents = await encodeImages(model, [masked], width, height);
  const extra = model.unetInChannels - model.latentChannels;
  const per = extra * h * w;
  const out = new Float32Array(batch * per);
  for (let i = 0; i < batch; i++) {
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[i * per + y * w + x] = repaint[(y * 8 + 4) * width + x * 8 + 4];
    out.set(maskedLatents.subarray(0, (extra - 1) * h * w), i * per + h * w);
  }
  return out;
}

/** A job's SDXL micro-conditioning fields (sdxl/time-ids.ts; unset fields take the defaults there). */
export function microConditioningOf(job: GenerationJob): SdxlMicroConditioning {
  return {
    originalSize: job.original_size,
    cropTopLeft: job.crops_coords_top_left,
    targetSize: job.target_size,
    aestheticScore: job.aesthetic_score,
    negativeAestheticScore: job.negative_aesthetic_score,
  };
}
