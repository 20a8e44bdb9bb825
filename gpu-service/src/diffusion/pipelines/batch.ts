/**
 * Dynamic batching for txt2img: several jobs that share model, size, steps, sampler, scheduler (and its
 * options), noise generator kind and token length are denoised together, so every sampler step is ONE
 * UNet run holding the unconditional and conditional halves of every image of every job
 * (createCfgDenoiser already takes per-image cond/uncond/cfg_scale).
 *
 * Why image i of a job is byte-identical to the same job run alone by generate():
 * - each job keeps its own prompt encoding, its own per-image noise generators (seed + i) and cfg_scale;
 * - the initial latents, the noise source, the sigmas and the sampler arithmetic are the same expressions
 *   as in generate(), applied element by element (every batched sampler is elementwise per image —
 *   dpm_adaptive is excluded by the caller because its error norm spans the whole batch);
 * - guidance is per image; a batch never mixes cfg_scale = 1 (single-pass) jobs with guided ones;
 * - the UNet itself must be batch-invariant per image, which holds for onnxruntime's CPU kernels on the
 *   graphs we ship (tested on the analytic tiny model); GPU kernels that pick algorithms by batch size
 *   (cuDNN convolutions) may differ in the last bits.
 * A job may leave the batch mid-run (cancelled, deadline): from the next step its images are no longer
 * sent to the UNet (the denoiser hands back x unchanged for them, which keeps the sampler's arithmetic on
 * those slots finite) and the other jobs are not disturbed.
 */
import { seedAt, type Seed } from '@image-api/shared/seed';
import type { GenerationJob } from '@image-api/shared/generation-job';
import type { DiffusionModel } from '../../models/diffusion-model';
import { createCfgDenoiser } from '../cfg-denoiser';
import { createNormalGenerator } from '../rng';
import type { NormalGenerator } from '../rng/types';
import { createBrownianTreeNoise, createIidNoise, getSampler } from '../samplers';
import type { Denoiser, DenoiserOutput } from '../samplers/types';
import type { Tensor } from '../tensor';
import { encodePromptPair, type Conditioning } from '../text-conditioning';
import { decodeLatents } from '../vae';
import { microConditioningOf, passSigmas, type DecodedImage, type StepProgress } from './generate';
import { addedConditioning } from '../sdxl/time-ids';
import { JobInputError } from './job-input-error';

/** One job of a batch. */
export interface BatchEntry {
  job: GenerationJob;
  /** False once the job has left the batch (cancelled); checked before every UNet run. */
  isActive: () => boolean;
  /** Progress of this job, with `denoised` holding only this job's images, float [batch_size, C, h, w]. */
  onStep?: (p: StepProgress) => void | Promise<void>;
}

/** Options of generateBatch. */
export interface BatchHooks {
  /** Aborting stops the whole batch between two steps; generateBatch then rejects with the reason. */
  signal?: AbortSignal;
}

/** The fields that must be equal for two txt2img jobs to share UNet runs (besides the token length). */
export function batchCompatibilityKey(job: GenerationJob): string {
  const sortKeys = (v: unknown): unknown =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, sortKeys(x)]))
      : v;
  return JSON.stringify([
    job.model,
    job.width,
    job.height,
    job.steps,
    job.sampler,
    job.scheduler,
    sortKeys(job.sampler_options),
    job.discard_penultimate_sigma,
    job.rng,
    job.preview,
    // A batch with one guided image runs the unconditional half for all; cfg 1 jobs skip it when alone.
    job.cfg_scale === 1,
    // Add-ons make a model variant: jobs with different sets never share a run.
    job.loras.map((l) => [l.name, l.strength]),
    job.embeddings.map((e) => e.name).sort(),
    job.vae ?? null,
    // SDXL time ids are per batch (the lead's); a refiner handoff runs alone.
    job.original_size ?? null,
    job.crops_coords_top_left ?? null,
    job.target_size ?? null,
    job.aesthetic_score ?? null,
    job.negative_aesthetic_score ?? null,
    job.refiner_switch_at ?? 0,
    job.refiner_model ?? null,
  ]);
}

/** Samplers whose maths couples the images of a batch (never batched): dpm_adaptive's error norm. */
export const BATCH_COUPLED_SAMPLERS: ReadonlySet<string> = new Set(['dpm_adaptive']);

/**
 * Run several compatible txt2img jobs as one batch.
 * @param entries jobs sharing batchCompatibilityKey() and token length (the caller groups them).
 * @returns per entry its decoded images (index i, seed + i), or undefined for an entry that left the batch.
 * @throws JobInputError when the entries are not batch-compatible or a job is not plain txt2img;
 *         the signal's reason when aborted; onnxruntime errors (they end every job of the batch).
 */
export async function generateBatch(model: DiffusionModel, entries: BatchEntry[], hooks: BatchHooks = {}): Promise<Array<DecodedImage[] | undefined>> {
  // 1. Check inputs.
  if (entries.length === 0) return [];
  const lead = entries[0].job;
  const key = batchCompatibilityKey(lead);
  for (const { job } of entries) {
    if (batchCompatibilityKey(job) !== key) throw new JobInputError('model', `job ${job.id} cannot share a batch with job ${lead.id}`);
    if (job.mode !== 'txt2img' || job.hires_fix) throw new JobInputError('mode', `job ${job.id}: only plain txt2img jobs are batched`);
    if (job.width * job.height > model.maxPixels) throw new JobInputError('size', `${job.width}x${job.height} exceeds ${model.name}'s limit of ${model.maxPixels} pixels`);
  }
  if (model.unetInChannels !== model.latentChannels) throw new JobInputError('model', `${model.name} is an inpainting model`);
  if (BATCH_COUPLED_SAMPLERS.has(lead.sampler)) throw new JobInputError('sampler', `${lead.sampler} couples the images of a batch`);
  let sampler: ReturnType<typeof getSampler>;
  try {
    sampler = getSampler(lead.sampler);
  } catch (err) {
    throw new JobInputError('sampler', (err as Error).message);
  }

  // 2. Encode each job's prompt pair, one copy per image; per-image seeds, generators and cfg_scale.
  const conditionings: Array<{ cond: Conditioning; uncond: Conditioning }> = [];
  for (const { job } of entries) conditionings.push(await encodePromptPair(model, job.prompt, job.negative_prompt, job.clip_skip));
  const tokens = conditionings[0].cond.tokens;
  if (conditionings.some((c) => c.cond.tokens !== tokens)) throw new JobInputError('prompt', 'jobs of one batch must have the same token length');
  const images = entries.reduce((n, e) => n + e.job.batch_size, 0);
  const firstImage: number[] = [];
  const seeds: Seed[] = [];
  const cfgScales: number[] = [];
  const owner: number[] = [];
  entries.forEach(({ job }, j) => {
    firstImage.push(seeds.length);
    for (let i = 0; i < job.batch_size; i++) {
      seeds.push(seedAt(job.seed, i));
      cfgScales.push(job.cfg_scale);
      owner.push(j);
    }
  });
  const rowSize = tokens * model.hiddenSize;
  const condAll = new Float32Array(images * rowSize);
  const uncondAll = new Float32Array(images * rowSize);
  for (let img = 0; img < images; img++) {
    condAll.set(conditionings[owner[img]].cond.hidden, img * rowSize);
    uncondAll.set(conditionings[owner[img]].uncond.hidden, img * rowSize);
  }
  const generators: NormalGenerator[] = seeds.map((s, img) => createNormalGenerator(entries[owner[img]].job.rng, s));
  const started = performance.now();

  // 3. Sigmas and initial latents x = 0 + σ_0·n, exactly as generate() writes them for txt2img.
  const sigmas = passSigmas(lead, lead.steps, 1, model);
  const h = lead.height / 8;
  const w = lead.width / 8;
  const plane = model.latentChannels * h * w;
  const x = new Float32Array(images * plane);
  const n0 = new Float32Array(images * plane);
  generators.forEach((g, i) => n0.set(g.randn(plane), i * plane));
  for (let k = 0; k < x.length; k++) x[k] = 0 + n0[k] * sigmas[0];

  // 4. Denoise, sending only the images of jobs still in the batch to the UNet.
  const denoiserFor = (active: number[]): Denoiser =>
    createCfgDenoiser({
      model,
      batch: active.length,
      latentHeight: h,
      latentWidth: w,
      cond: gatherRows(condAll, active, rowSize),
      uncond: gatherRows(uncondAll, active, rowSize),
      tokens,
      cfgScales: active.map((i) => cfgScales[i]),
      added: model.sdxl
        ? addedConditioning(
            model.sdxl.kind,
            active.map((i) => ({ cond: conditionings[owner[i]].cond.pooled!, uncond: conditionings[owner[i]].uncond.pooled! })),
            lead.height,
            lead.width,
            microConditioningOf(lead),
          )
        : undefined,
    });
  const full = denoiserFor(seeds.map((_, i) => i));
  let partial: { signature: string; denoise: Denoiser } | undefined;
  const denoise: Denoiser = async (xt, sigma) => {
    const active = seeds.map((_, i) => i).filter((i) => entries[owner[i]].isActive());
    if (active.length === seeds.length) return full(xt, sigma);
    if (active.length === 0) {
      hooks.signal?.throwIfAborted();
      return { denoised: copyOf(xt) };
    }
    const signature = active.join(',');
    if (partial?.signature !== signature) partial = { signature, denoise: denoiserFor(active) };
    const out = await partial.denoise(gatherRows(xt, active, plane), sigma);
    return scatterOutput(xt, out, active, plane);
  };
  const positive = Array.from(sigmas).filter((s) => s > 0);
  const noise =
    sampler.defaultNoise === 'brownian'
      ? createBrownianTreeNoise({ seeds, perImageNumel: plane, sigmaMin: Math.min(...positive), sigmaMax: Math.max(...positive) })
      : createIidNoise(generators, plane);
  const total = sigmas.length - 1;
  const out = await sampler.sample(denoise, x, sigmas, noise, {
    ...sampler.defaultOptions,
    ...lead.sampler_options,
    signal: hooks.signal,
    onStep: async (info) => {
      const elapsedSeconds = (performance.now() - started) / 1000;
      const step = info.i + 1;
      for (let j = 0; j < entries.length; j++) {
        const e = entries[j];
        if (!e.onStep || !e.isActive()) continue;
        await e.onStep({
          step,
          total,
          elapsedSeconds,
          etaSeconds: (elapsedSeconds / step) * (total - step),
          denoised: info.denoised.subarray(firstImage[j] * plane, (firstImage[j] + e.job.batch_size) * plane),
          latentHeight: h,
          latentWidth: w,
        });
      }
    },
  });
  hooks.signal?.throwIfAborted();
  const latents = out instanceof Float32Array ? out : Float32Array.from(out);

  // 5. Decode each job still in the batch.
  const results: Array<DecodedImage[] | undefined> = [];
  for (let j = 0; j < entries.length; j++) {
    const { job } = entries[j];
    if (!entries[j].isActive()) {
      results.push(undefined);
      continue;
    }
    const mine = latents.subarray(firstImage[j] * plane, (firstImage[j] + job.batch_size) * plane);
    const decoded = await decodeLatents(model, mine, job.batch_size, h, w);
    results.push(decoded.rgb.map((rgb, index) => ({ index, seed: seedAt(job.seed, index), rgb, width: decoded.width, height: decoded.height })));
  }
  return results;
}

/** Rows `indices` of a row-major [N, rowSize] tensor, in order, as a tensor of the same kind. */
function gatherRows<T extends Tensor>(src: T, indices: number[], rowSize: number): T {
  const out = (src instanceof Float64Array ? new Float64Array(indices.length * rowSize) : new Float32Array(indices.length * rowSize)) as T;
  indices.forEach((row, k) => out.set(src.subarray(row * rowSize, (row + 1) * rowSize), k * rowSize));
  return out;
}

function copyOf(t: Tensor): Tensor {
  return t instanceof Float64Array ? Float64Array.from(t) : Float32Array.from(t);
}

/** Full-batch denoiser output from the active images' output; images that left the batch get x back. */
function scatterOutput(x: Tensor, out: DenoiserOutput, active: number[], plane: number): DenoiserOutput {
  const place = (part: Tensor): Tensor => {
    const whole = copyOf(x);
    active.forEach((img, k) => whole.set(part.subarray(k * plane, (k + 1) * plane), img * plane));
    return whole;
  };
  return out.uncond ? { denoised: place(out.denoised), uncond: place(out.uncond) } : { denoised: place(out.denoised) };
}
