/**
 * The generation pipeline of flow-matching transformer models (FLUX.1, SD 3.x), read as diffusers' FluxPipeline /
 * StableDiffusion3Pipeline steps with ComfyUI's sampler loop:
 * check inputs → encode prompt(s) → source latents → sample over the shifted flow sigmas → decode → composite.
 *
 * - Sigmas: the job's schedule over the model's flow table at this image size (schedules/flow-schedule.ts, FLUX
 *   dynamic shift by token count); `simple` reproduces diffusers' sigmas. img2img strength as for UNet models.
 * - Initial latents (ComfyUI `CONST.noise_scaling`): x = (1 − σ0)·z0 + σ0·n; txt2img (σ0 = 1) starts at the noise.
 * - Denoiser: the transformer's velocity v, classifier-free guided when cfg_scale > 1 (batch [uncond; cond],
 *   v = v_u + cfg·(v_c − v_u)), turned into the x0 estimate D = x − σ·v for the k-diffusion samplers
 *   (samplers/flow-samplers.ts says which apply).
 * - FLUX.1: latents packed 2×2 into tokens (`_pack_latents`), image ids (0, r, c), text ids 0, timestep σ, the
 *   distilled `guidance` (job.guidance, default 3.5) for dev-style models. SD 3.x: unpacked latents, timestep 1000σ.
 * - Inpainting: the latent mask as ComfyUI's KSamplerX0Inpaint applies it with flow noise scaling; pixels outside
 *   the mask are the source's exactly.
 */
import { seedAt } from '@image-api/shared/seed';
import type { GenerationJob } from '@image-api/shared/generation-job';
import type { DiffusionModel } from '../../models/diffusion-model';
import { encodeFlowPrompt, type FlowConditioning } from '../flow-conditioning';
import { createNormalGenerator } from '../rng';
import { createBrownianTreeNoise, createIidNoise, getSampler } from '../samplers';
import { FLOW_REFUSED_SCHEDULES, FLOW_SAMPLER_IDS } from '../samplers/flow-samplers';
import type { Denoiser } from '../samplers/types';
import { flowModelSchedule } from '../schedules/flow-schedule';
import type { Tensor } from '../tensor';
import { decodeLatents, encodeImages } from '../vae';
import { passSigmas, type DecodedImage, type GenerateHooks } from './generate';
import { latentMask, loadInputImage, loadRepaintMask } from './input-images';
import { JobInputError } from './job-input-error';

/** Guidance FLUX.1-dev is distilled around (diffusers FluxPipeline `guidance_scale` default). */
export const FLUX_DEFAULT_GUIDANCE = 3.5;

/**
 * Pack latents into FLUX tokens (diffusers `_pack_latents`).
 * @param x float [B, C, h, w] (h, w even) → float32 [B, (h/2)(w/2), 4C], token r·(w/2)+c, feature ch·4 + dy·2 + dx.
 */
export function packLatents(x: ArrayLike<number>, B: number, C: number, h: number, w: number): Float32Array {
  const h2 = h / 2;
  const w2 = w / 2;
  const out = new Float32Array(B * C * h * w);
  for (let b = 0; b < B; b++)
    for (let ch = 0; ch < C; ch++)
      for (let y = 0; y < h; y++)
        for (let xx = 0; xx < w; xx++) {
          const token = (y >> 1) * w2 + (xx >> 1);
          const feature = ch * 4 + (y & 1) * 2 + (xx & 1);
          out[(b * h2 * w2 + token) * C * 4 + feature] = x[((b * C + ch) * h + y) * w + xx];
        }
  return out;
}

/** The inverse of packLatents: float [B, (h/2)(w/2), 4C] → float32 [B, C, h, w]. */
export function unpackLatents(p: ArrayLike<number>, B: number, C: number, h: number, w: number): Float32Array {
  const w2 = w / 2;
  const h2 = h / 2;
  const out = new Float32Array(B * C * h * w);
  for (let b = 0; b < B; b++)
    for (let ch = 0; ch < C; ch++)
      for (let y = 0; y < h; y++)
        for (let xx = 0; xx < w; xx++) {
          const token = (y >> 1) * w2 + (xx >> 1);
          out[((b * C + ch) * h + y) * w + xx] = p[(b * h2 * w2 + token) * C * 4 + ch * 4 + (y & 1) * 2 + (xx & 1)];
        }
  return out;
}

/** FLUX image ids for a latent of h × w: float32 [(h/2)(w/2), 3], rows (0, r, c). */
export function fluxImageIds(h: number, w: number): Float32Array {
  const h2 = h / 2;
  const w2 = w / 2;
  const ids = new Float32Array(h2 * w2 * 3);
  for (let r = 0; r < h2; r++)
    for (let c = 0; c < w2; c++) {
      ids[(r * w2 + c) * 3 + 1] = r;
      ids[(r * w2 + c) * 3 + 2] = c;
    }
  return ids;
}

/** What the flow denoiser is built from. */
export interface FlowDenoiserInput {
  model: DiffusionModel;
  batch: number;
  latentHeight: number;
  latentWidth: number;
  cond: FlowConditioning;
  /** The negative prompt's conditioning; used (CFG) only when cfgScale > 1. */
  uncond?: FlowConditioning;
  cfgScale: number;
  /** FLUX.1-dev distilled guidance (only for models with a guidance input). */
  guidance?: number;
}

function repeatRows(src: Float32Array, times: number): Float32Array {
  const out = new Float32Array(src.length * times);
  for (let i = 0; i < times; i++) out.set(src, i * src.length);
  return out;
}

/**
 * The k-diffusion denoiser of a flow model: D(x, σ) = x − σ·v(x, σ) with v the (guided) transformer velocity.
 * @returns a Denoiser over flat float [B, C, h, w] latents.
 */
export function createFlowDenoiser(input: FlowDenoiserInput): Denoiser {
  const { model, batch: B, latentHeight: h, latentWidth: w, cond, cfgScale } = input;
  const flow = model.flow!;
  const C = model.latentChannels;
  const perImage = C * h * w;
  const useCfg = cfgScale > 1 && input.uncond !== undefined;
  const rows = useCfg ? 2 * B : B;
  const conds = useCfg ? [input.uncond!, cond] : [cond];
  const hidden = new Float32Array(rows * cond.tokens * cond.width);
  const pooled = new Float32Array(rows * cond.pooled.length);
  conds.forEach((c, k) => {
    hidden.set(repeatRows(c.hidden, B), k * B * c.hidden.length);
    pooled.set(repeatRows(c.pooled, B), k * B * c.pooled.length);
  });
  const imgIds = flow.family === 'flux' ? fluxImageIds(h, w) : undefined;
  const txtIds = flow.family === 'flux' ? new Float32Array(cond.tokens * 3) : undefined;
  return async (x: Tensor, sigma: number) => {
    const xin = new Float32Array(rows * perImage);
    for (let r = 0; r < rows; r++) xin.set(x.subarray((r % B) * perImage, ((r % B) + 1) * perImage), r * perImage);
    let v: Float32Array;
    const common = {
      encoder_hidden_states: { data: hidden, dims: [rows, cond.tokens, cond.width] },
      pooled_projections: { data: pooled, dims: [rows, cond.pooled.length] },
    };
    if (flow.family === 'flux') {
      const tokens = (h / 2) * (w / 2);
      const feeds: Parameters<typeof flow.transformer.run>[0] = {
        ...common,
        hidden_states: { data: packLatents(xin, rows, C, h, w), dims: [rows, tokens, C * 4] },
        timestep: { data: new Float32Array(rows).fill(sigma), dims: [rows] },
        img_ids: { data: imgIds!, dims: [tokens, 3] },
        txt_ids: { data: txtIds!, dims: [cond.tokens, 3] },
      };
      if (flow.guidanceEmbed) feeds.guidance = { data: new Float32Array(rows).fill(input.guidance ?? FLUX_DEFAULT_GUIDANCE), dims: [rows] };
      const out = await flow.transformer.run(feeds, ['out_sample']);
      v = unpackLatents(out.out_sample.data, rows, C, h, w);
    } else {
      const out = await flow.transformer.run(
        { ...common, sample: { data: xin, dims: [rows, C, h, w] }, timestep: { data: new Float32Array(rows).fill(1000 * sigma), dims: [rows] } },
        ['out_sample'],
      );
      v = out.out_sample.data;
    }
    const denoised = x instanceof Float64Array ? new Float64Array(B * perImage) : new Float32Array(B * perImage);
    const offset = useCfg ? B * perImage : 0;
    for (let k = 0; k < B * perImage; k++) {
      const vk = useCfg ? v[k] + cfgScale * (v[offset + k] - v[k]) : v[k];
      denoised[k] = x[k] - sigma * vk;
    }
    return { denoised };
  };
}

/**
 * Check a job against a flow model (the parts the UNet pipeline checks elsewhere are checked by generate()).
 * @throws JobInputError naming the field: a sampler or schedule that does not apply to flow models, hires_fix,
 *         clip_skip, guidance for a model without a guidance input, a size that is not a multiple of 16 (FLUX's 2×2
 *         packing and SD 3.x's 2×2 patches of the 8× latents). A negative prompt is not refused without CFG
 *         (cfg_scale ≤ 1, FLUX.1-schnell's setting): it is not encoded or used then, as in diffusers and ComfyUI
 *         (the ComfyUI-style API sends a default negative prompt with every request).
 */
export function checkFlowJob(model: DiffusionModel, job: GenerationJob): void {
  const flow = model.flow!;
  const family = flow.family === 'flux' ? 'FLUX.1' : 'Stable Diffusion 3.x';
  if (!FLOW_SAMPLER_IDS.includes(job.sampler)) {
    throw new JobInputError('sampler', `sampler ${job.sampler} does not apply to ${family} (flow matching); use one of ${FLOW_SAMPLER_IDS.join(', ')}`);
  }
  if (FLOW_REFUSED_SCHEDULES.includes(job.scheduler)) {
    throw new JobInputError('scheduler', `schedule ${job.scheduler} lists SD 1.x / SDXL noise levels and does not apply to ${family}; use simple (as diffusers), normal, karras, beta, …`);
  }
  if (job.hires_fix) throw new JobInputError('hires_fix', `hires_fix is not available for ${family} models`);
  if (job.clip_skip !== undefined) throw new JobInputError('clip_skip', `clip_skip does not apply to ${family} models (their text conditioning is fixed by the architecture)`);
  if (job.guidance !== undefined && !flow.guidanceEmbed) {
    throw new JobInputError('guidance', `${model.name} takes no distilled guidance (only FLUX.1-dev-style models do); leave guidance out and use cfg_scale`);
  }
  if (job.width % 16 !== 0 || job.height % 16 !== 0) throw new JobInputError('size', `${family} needs width and height in multiples of 16, got ${job.width}x${job.height}`);
}

/**
 * Run a job on a flow model (generate() dispatches here when `model.flow` is set).
 * @throws JobInputError for a job this model cannot serve; the signal's reason when aborted.
 */
export async function generateFlow(model: DiffusionModel, job: GenerationJob, hooks: GenerateHooks = {}): Promise<DecodedImage[]> {
  checkFlowJob(model, job);
  const sampler = getSampler(job.sampler);
  const B = job.batch_size;
  const { width, height } = job;
  const h = height / 8;
  const w = width / 8;
  const C = model.latentChannels;
  const perImage = C * h * w;
  const useCfg = job.cfg_scale > 1;
  const cond = await encodeFlowPrompt(model, job.prompt);
  const uncond = useCfg ? await encodeFlowPrompt(model, job.negative_prompt) : undefined;
  const seeds = Array.from({ length: B }, (_, i) => seedAt(job.seed, i));
  const generators = seeds.map((s) => createNormalGenerator(job.rng, s));
  const started = performance.now();

  let source: Uint8Array | undefined;
  let repaint: Uint8Array | undefined;
  let z0: Float32Array | undefined;
  let mask: Float32Array | undefined;
  if (job.mode !== 'txt2img') {
    source = await loadInputImage(job.init_image!, width, height, 'init_image');
    z0 = await encodeImages(model, Array(B).fill(source), width, height);
  }
  if (job.mode === 'inpaint') {
    repaint = await loadRepaintMask(job.mask!, width, height, job.mask_mode);
    mask = latentMask(repaint, width, height);
  }
  const strength = job.mode === 'txt2img' ? 1 : job.strength;
  const schedule = flowModelSchedule(flow(model).scheduler, width, height);
  const sigmas = strength > 0 ? passSigmas(job, job.steps, strength, { schedule }) : new Float64Array([0]);
  let latents: Float32Array;
  if (sigmas.length < 2) {
    latents = z0!;
  } else {
    const n0 = new Float32Array(B * perImage);
    generators.forEach((g, i) => n0.set(g.randn(perImage), i * perImage));
    const s0 = sigmas[0];
    const x = new Float32Array(B * perImage);
    for (let k = 0; k < x.length; k++) x[k] = (z0 ? (1 - s0) * z0[k] : 0) + s0 * n0[k];
    let denoise = createFlowDenoiser({ model, batch: B, latentHeight: h, latentWidth: w, cond, uncond, cfgScale: job.cfg_scale, guidance: job.guidance });
    if (mask) denoise = flowInpaintDenoiser(denoise, mask, z0!, n0);
    const positive = Array.from(sigmas).filter((s) => s > 0);
    const noise =
      sampler.defaultNoise === 'brownian'
        ? createBrownianTreeNoise({ seeds, perImageNumel: perImage, sigmaMin: Math.min(...positive), sigmaMax: Math.max(...positive) })
        : createIidNoise(generators, perImage);
    const total = sigmas.length - 1;
    const out = await sampler.sample(denoise, x, sigmas, noise, {
      ...sampler.defaultOptions,
      ...job.sampler_options,
      signal: hooks.signal,
      onStep: async (info) => {
        if (!hooks.onStep) return;
        const elapsedSeconds = (performance.now() - started) / 1000;
        const step = info.i + 1;
        await hooks.onStep({ step, total, elapsedSeconds, etaSeconds: (elapsedSeconds / step) * (total - step), denoised: info.denoised, latentHeight: h, latentWidth: w });
      },
    });
    hooks.signal?.throwIfAborted();
    latents = out instanceof Float32Array ? out : Float32Array.from(out);
    if (mask) for (let k = 0; k < latents.length; k++) latents[k] = mask[k % mask.length] * latents[k] + (1 - mask[k % mask.length]) * z0![k];
  }
  const decoded = await decodeLatents(model, latents, B, h, w);
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

function flow(model: DiffusionModel) {
  return model.flow!;
}

/**
 * ComfyUI KSamplerX0Inpaint with flow noise scaling: the kept region (mask 0) is fed as the source noised to σ,
 * (1 − σ)·z0 + σ·n0, and its x0 estimate is the source itself.
 */
function flowInpaintDenoiser(inner: Denoiser, mask: Float32Array, z0: Float32Array, n0: Float32Array): Denoiser {
  const plane = mask.length;
  return async (x: Tensor, sigma: number) => {
    const xin = new Float32Array(x.length);
    for (let k = 0; k < x.length; k++) {
      const m = mask[k % plane];
      xin[k] = m * x[k] + (1 - m) * ((1 - sigma) * z0[k] + sigma * n0[k]);
    }
    const out = await inner(xin, sigma);
    const d = new Float32Array(x.length);
    for (let k = 0; k < x.length; k++) {
      const m = mask[k % plane];
      d[k] = m * out.denoised[k] + (1 - m) * z0[k];
    }
    return { denoised: d };
  };
}
