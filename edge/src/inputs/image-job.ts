import { encoderQuality } from './openai-options';
import type { BackendModel } from '@image-api/shared/api/models';
import { DEFAULT_CFG_SCALE, DEFAULT_SAMPLING_STEPS, QUALITY_STEPS, type Quality } from '@image-api/shared/api/openai-images';
import { formatSize, type ImageSize } from '@image-api/shared/api/size';
import type { GenerationJobInput } from '@image-api/shared/generation-job';
import { MAX_SEED_TEXT, seedRangeFits, type Seed } from '@image-api/shared/seed';
import { resolveSampler, SamplerNameError, type NameStyle, type ResolvedSampler, samplerJobFields } from '@image-api/shared/sampler-names';
import { encodeBase64 } from '../lib/base64';
import { invalidParameter } from '../lib/api-error';
import { randomSeed } from '../lib/crypto';
import type { GenerationCost } from '../middleware/rate-limit';
import type { MaskMode } from './png-mask';
import type { InputImage } from './resolve-image-input';
import { sizeFromSourceImage } from './source-size';
import { resolveSampling, type ResolvedSampling } from './sampling-defaults';

/** What a job needs the model to do. */
export type ModelCapability = 'txt2img' | 'img2img' | 'inpaint';

const CAPABILITY_WORDS: Record<ModelCapability, string> = {
  txt2img: 'generate images from text',
  img2img: 'transform images (img2img)',
  inpaint: 'inpaint masked areas',
};

/** @throws ApiError 400 naming `model` when the model lacks the capability. */
export function requireCapability(model: BackendModel, capability: ModelCapability): void {
  if (!model.capabilities.includes(capability)) {
    throw invalidParameter('model', `The model "${model.id}" cannot ${CAPABILITY_WORDS[capability]}.`);
  }
}

/**
 * The output size: the requested one, else the source image's size fitted to the model
 * (source-size.ts), else the model's native size.
 * @param param the field named when the size is over the model's max_pixels ("size", "width").
 * @throws ApiError 400 naming `param` when width × height > model.max_pixels.
 */
export function resolveOutputSize(model: BackendModel, requested: ImageSize | null | undefined, source: InputImage | null, param = 'size'): ImageSize {
  const size = requested ?? (source ? sizeFromSourceImage(source.width, source.height, model.max_pixels) : { width: model.native_size[0], height: model.native_size[1] });
  if (size.width * size.height > model.max_pixels) {
    throw invalidParameter(
      param,
      `size ${formatSize(size)} has ${size.width * size.height} pixels; the model "${model.id}" allows at most ${model.max_pixels}.`,
    );
  }
  return size;
}

/** resolveSampler with its SamplerNameError turned into a 400 naming the style's field. */
export function resolveSamplerOrThrow(style: NameStyle, sampler: string, scheduler?: string): ResolvedSampler {
  try {
    return resolveSampler(style, sampler, scheduler);
  } catch (error) {
    if (error instanceof SamplerNameError) throw invalidParameter(error.param, error.message);
    throw error;
  }
}

/**
 * The seed of image 0: `requested` when given and not −1, else random in [0, 2^32 − 1]. Seeds are uint64
 * (shared/src/seed.ts): a safe integer, or a decimal string above 2^53 − 1, kept exactly.
 * @param images images in the batch (image i uses seed + i).
 * @param countField the request field that counts the images, named in the error.
 * @throws ApiError 400 naming `param` when seed + images − 1 would exceed 2^64 − 1.
 */
export function resolveSeed(
  requested: Seed | -1 | undefined,
  images: number,
  pickSeed: () => number = randomSeed,
  param = 'seed',
  countField = 'n',
): Seed {
  const seed = requested === undefined || requested === -1 ? pickSeed() : requested;
  if (!seedRangeFits(seed, images)) {
    throw invalidParameter(param, `seed + ${countField} − 1 must not exceed ${MAX_SEED_TEXT} (2^64 − 1; image i uses seed + i).`);
  }
  return seed;
}

/** The OpenAI/GPUStack-style fields an image-input job is built from (edits, variations, generations with `image`). */
export interface OpenAiImageJobInput {
  taskId: string;
  tenant: string;
  model: BackendModel;
  source: InputImage;
  /** With a mask: inpainting; without: img2img of the whole image. */
  mask?: InputImage;
  mask_mode?: MaskMode;
  prompt: string;
  negative_prompt: string;
  n: number;
  size?: ImageSize | null;
  strength: number;
  sample_method?: string;
  schedule_method?: string;
  sampling_steps?: number;
  quality?: Quality;
  cfg_scale?: number;
  guidance?: number;
  seed?: Seed | -1;
  output_format: 'png' | 'jpeg' | 'webp';
  output_compression?: number;
  /** Preview mode of the job (GenerationJob.preview; only used when the answer is streamed). Default 'none'. */
  preview?: 'none' | 'fast' | 'full';
  /** Seed source for seed −1/omitted (default CSPRNG). */
  pickSeed?: () => number;
}

/**
 * Build the GenerationJob of an OpenAI-style request with a source image (docs/architecture.md, "One
 * internal job"): mode `inpaint` with a mask, else `img2img`; init_image/mask as base64 of the
 * files as sent (the GPU service decodes and fits them: cover + centre crop); strength with
 * stable-diffusion.cpp/A1111 step semantics (`strength_schedule` 'scaled': ≈ steps × strength run);
 * sampler names of stable-diffusion.cpp; steps / cfg / sampler / schedule as resolveOpenAiSampling fills them.
 * @throws ApiError 400 naming `model` (capability), `size`, `sample_method`/`schedule_method` or `seed`.
 */
export function buildOpenAiImageJob(input: OpenAiImageJobInput): GenerationJobInput {
  const mode = input.mask ? 'inpaint' : 'img2img';
  requireCapability(input.model, mode);
  const size = resolveOutputSize(input.model, input.size, input.source);
  const sampling = resolveOpenAiSampling(input.model, input);
  const seed = resolveSeed(input.seed, input.n, input.pickSeed);
  const job: GenerationJobInput = {
    id: input.taskId,
    tenant: input.tenant,
    model: input.model.id,
    mode,
    prompt: input.prompt,
    negative_prompt: input.negative_prompt,
    width: size.width,
    height: size.height,
    batch_size: input.n,
    seed,
    steps: sampling.steps,
    ...samplerJobFields(sampling.resolved),
    cfg_scale: sampling.cfg_scale,
    init_image: encodeBase64(input.source.bytes),
    strength: input.strength,
    strength_schedule: 'scaled',
    output: { format: input.output_format, quality: encoderQuality(input.output_compression) },
    preview: input.preview ?? 'none',
  };
  if (input.mask) {
    job.mask = encodeBase64(input.mask.bytes);
    job.mask_mode = input.mask_mode ?? 'alpha';
  }
  const guidance = input.guidance ?? sampling.guidance;
  if (guidance !== undefined) job.guidance = guidance;
  return job;
}

/**
 * What a job costs the compute-unit budget: steps actually run per image and the output size.
 * txt2img and strength ≥ 1 run `steps`; strength_schedule 'steps' (ComfyUI) runs exactly `steps`;
 * 'scaled' (A1111/sd.cpp, the default) runs ⌊min(strength, 0.999) · steps⌋ + 1, as the GPU service's
 * passSigmas does (gpu-service/src/diffusion/pipelines/generate.ts, docs/samplers.md §1.4).
 */
export function jobCost(job: GenerationJobInput): GenerationCost {
  const strength = job.mode === 'txt2img' || job.mode === undefined ? 1 : (job.strength ?? 0.75);
  const scaled = job.strength_schedule !== 'steps' && strength < 1;
  const steps = scaled ? Math.floor(Math.min(strength, 0.999) * job.steps) + 1 : job.steps;
  return { steps, width: job.width, height: job.height };
}

/** The OpenAI-style sampling fields of a generation, edit or variation request (unset = undefined). */
export interface OpenAiSamplingFields {
  sample_method?: string;
  schedule_method?: string;
  sampling_steps?: number;
  quality?: Quality;
  cfg_scale?: number;
}

/**
 * Sampling of an OpenAI-style request: steps = sampling_steps, else QUALITY_STEPS[quality], else the model's
 * per-model default (shared/src/model-defaults.ts), else DEFAULT_SAMPLING_STEPS; cfg_scale, sample_method and
 * schedule_method as given, else the model's, else DEFAULT_CFG_SCALE / euler_a / discrete.
 * @throws ApiError 400 naming `sample_method` / `schedule_method` for an unknown name.
 */
export function resolveOpenAiSampling(model: BackendModel, request: OpenAiSamplingFields): ResolvedSampling {
  return resolveSampling(
    'sdcpp',
    model,
    {
      sampler: request.sample_method,
      scheduler: request.schedule_method,
      steps: request.sampling_steps ?? (request.quality ? QUALITY_STEPS[request.quality] : undefined),
      cfg_scale: request.cfg_scale,
    },
    { steps: DEFAULT_SAMPLING_STEPS, cfg_scale: DEFAULT_CFG_SCALE, params: { steps: 'sampling_steps', cfg_scale: 'cfg_scale', sampler: 'sample_method' } },
  );
}
