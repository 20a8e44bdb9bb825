import { zValidator } from '@hono/zod-validator';
import { Hono } from 'hono';
import {
  ImageGenerationRequestSchema,
  PREVIEW_MODES,
  QUALITY_STEPS,
  DEFAULT_SAMPLING_STEPS,
  type ImageData,
  type ImageGenerationRequest,
  type ImagesResponse,
} from '../../../shared/src/api/openai-images';
import type { BackendModel } from '../../../shared/src/api/models';
import { formatSize, type ImageSize } from '../../../shared/src/api/size';
import { MAX_SEED, type GenerationJobInput, type GenerationResult } from '../../../shared/src/generation-job';
import { resolveSampler, SamplerNameError } from '../../../shared/src/sampler-names';
import type { AppEnv } from '../env';
import { invalidParameter, unsupportedParameter, ApiError } from '../lib/api-error';
import { decodeBase64 } from '../lib/base64';
import { randomSeed } from '../lib/crypto';
import { readEdgeConfig } from '../lib/edge-config';
import { GpuBackendClient } from '../gpu/backend-client';
import type { ModelCatalog } from '../gpu/model-catalog';
import { acquireGenerationSlot } from '../middleware/rate-limit';
import { validationHook } from '../middleware/validation-hook';
import { fitCustomMetadata, FORMAT_EXTENSIONS, imageObjectKey, storeImagesAtomically, type StoredImage } from '../storage/r2-images';
import { signFileLink } from '../storage/signed-links';

/** Dependencies of the OpenAI images routes, owned by the app instance. */
export interface OpenAiImagesRouteOptions {
  catalog: ModelCatalog;
  /** Clock in unix milliseconds (tests may pin it). */
  now?: () => number;
}

/**
 * POST /v1/images/generations (and the /api/images/generations alias, mounted by the app):
 * validate → resolve model, size, sampler, seed and steps → GenerationJob → GPU service → store
 * every image in R2 (all or nothing) → `{created, data: [{url | b64_json, seed}], usage}` with an
 * `x-task-id` header. The key's rate limits (RateLimiter Durable Object) are checked after
 * validation and before any GPU work; the slot is released when the request ends. Errors are ApiErrors rendered by the error handler.
 */
export function openAiImagesRoutes(options: OpenAiImagesRouteOptions): Hono<AppEnv> {
  // Looked up per call so a faked clock (vi.setSystemTime) applies.
  const now = options.now ?? (() => Date.now());
  const routes = new Hono<AppEnv>();

  routes.post('/generations', zValidator('json', ImageGenerationRequestSchema, validationHook), async (c) => {
    const request = c.req.valid('json');
    const config = readEdgeConfig(c.env);
    const apiKey = c.get('apiKey');
    const taskId = crypto.randomUUID();
    c.header('x-task-id', taskId);

    refuseUnservedFields(request);
    const slot = await acquireGenerationSlot(c, request.n);
    let succeeded = false;
    let result: GenerationResult;
    let images: StoredImage[];
    let createdAt: Date;
    try {
      const client = new GpuBackendClient({ baseUrl: config.gpuServiceUrl, token: config.gpuServiceToken });
      const model = await options.catalog.findCheckpoint(client, config.gpuServiceUrl, request.model ?? config.defaultModel);
      const job = buildGenerationJob({ request, model, taskId, tenant: apiKey.tenant });
      result = await client.runJob(job, c.req.raw.signal);
      createdAt = new Date(now());
      images = storedImages({ request, job, result, createdAt, keyName: apiKey.name });
      await storeImagesAtomically(c.env.IMAGES, images);
      succeeded = true;
    } finally {
      await slot?.release(succeeded);
    }

    const origin = new URL(c.req.url).origin;
    const data: ImageData[] = [];
    for (const [i, image] of result.images.entries()) {
      if (request.response_format === 'b64_json') {
        data.push({ b64_json: image.b64, seed: image.seed });
      } else {
        const link = await signFileLink({
          origin,
          key: images[i].key,
          secret: config.linkSigningSecret,
          ttlSeconds: config.linkTtlSeconds,
          nowSeconds: createdAt.getTime() / 1000,
        });
        data.push({ url: link.url, seed: image.seed });
      }
    }
    const body: ImagesResponse = {
      created: Math.floor(createdAt.getTime() / 1000),
      data,
      usage: {
        images: result.images.length,
        steps: result.params.steps,
        width: result.params.width,
        height: result.params.height,
        compute_units: computeUnits(result.params.steps, result.params.width, result.params.height, result.images.length),
      },
    };
    return c.json(body, 200);
  });

  return routes;
}

/**
 * Compute units of a job: steps × megapixels × images (issue 6), rounded to 3 decimals.
 * A 1024² 50-step image costs 52.4; a 256² 4-step one 0.262.
 */
export function computeUnits(steps: number, width: number, height: number, images: number): number {
  return Math.round(steps * ((width * height) / 1_000_000) * images * 1000) / 1000;
}

/** Recognised fields this endpoint cannot serve yet are refused, never silently ignored. */
function refuseUnservedFields(request: ImageGenerationRequest): void {
  if (request.stream) {
    throw unsupportedParameter('stream', 'Streaming ("stream": true) is not available yet; omit it for a JSON response.');
  }
  if (request.image !== undefined) {
    throw unsupportedParameter('image', 'Source images are not accepted on /v1/images/generations yet.');
  }
}

/** Inputs of {@link buildGenerationJob}. */
export interface BuildGenerationJobInput {
  request: ImageGenerationRequest;
  model: BackendModel;
  taskId: string;
  tenant: string;
  /** Seed source for seed −1/omitted (default: CSPRNG). */
  pickSeed?: () => number;
}

/**
 * Translate a validated OpenAI-style request into the GenerationJob (ARCHITECTURE.md, "One
 * internal job"):
 * - size: request size or the model's native_size; width × height must be ≤ model.max_pixels;
 * - sampler/scheduler: stable-diffusion.cpp names resolved by shared/src/sampler-names.ts;
 * - seed: given (≥ 0) or random in [0, 2^32 − 1]; seed + n − 1 must stay ≤ MAX_SEED;
 * - steps: sampling_steps, else QUALITY_STEPS[quality], else DEFAULT_SAMPLING_STEPS;
 * - preview: GPUStack names mapped by PREVIEW_MODES (only meaningful when streaming).
 * @throws ApiError 400 naming `model`, `size`, `sample_method`/`schedule_method` or `seed`.
 */
export function buildGenerationJob(input: BuildGenerationJobInput): GenerationJobInput {
  const { request, model } = input;
  if (!model.capabilities.includes('txt2img')) {
    throw invalidParameter('model', `The model "${model.id}" cannot generate images from text.`);
  }
  const size: ImageSize = request.size ?? { width: model.native_size[0], height: model.native_size[1] };
  if (size.width * size.height > model.max_pixels) {
    throw invalidParameter(
      'size',
      `size ${formatSize(size)} has ${size.width * size.height} pixels; the model "${model.id}" allows at most ${model.max_pixels}.`,
    );
  }
  let resolved: ReturnType<typeof resolveSampler>;
  try {
    resolved = resolveSampler('sdcpp', request.sample_method, request.schedule_method);
  } catch (error) {
    // Its message names the field and lists every accepted name.
    if (error instanceof SamplerNameError) throw invalidParameter(error.param, error.message);
    throw error;
  }
  const seed = request.seed === undefined || request.seed === -1 ? (input.pickSeed ?? randomSeed)() : request.seed;
  if (seed + request.n - 1 > MAX_SEED) {
    throw invalidParameter('seed', `seed + n − 1 must not exceed ${MAX_SEED} (image i uses seed + i).`);
  }
  const steps = request.sampling_steps ?? (request.quality ? QUALITY_STEPS[request.quality] : DEFAULT_SAMPLING_STEPS);
  const job: GenerationJobInput = {
    id: input.taskId,
    tenant: input.tenant,
    model: model.id,
    mode: 'txt2img',
    prompt: request.prompt,
    negative_prompt: request.negative_prompt,
    width: size.width,
    height: size.height,
    batch_size: request.n,
    seed,
    steps,
    sampler: resolved.sampler,
    scheduler: resolved.scheduler,
    sampler_options: resolved.options,
    discard_penultimate_sigma: resolved.discard_penultimate_sigma,
    cfg_scale: request.cfg_scale,
    output: { format: request.output_format, quality: request.output_compression ?? 90 },
    preview: request.stream ? PREVIEW_MODES[request.preview] : 'none',
  };
  if (request.guidance !== undefined) job.guidance = request.guidance;
  return job;
}

/** Inputs of {@link storedImages}. */
interface StoredImagesInput {
  request: ImageGenerationRequest;
  job: GenerationJobInput;
  result: GenerationResult;
  createdAt: Date;
  keyName: string;
}

/** The R2 objects for a job result: key per image and the generation parameters as metadata. */
function storedImages(input: StoredImagesInput): StoredImage[] {
  const { request, job, result, createdAt } = input;
  const extension = FORMAT_EXTENSIONS[request.output_format];
  return result.images.map((image) => {
    let bytes: Uint8Array;
    try {
      bytes = decodeBase64(image.b64);
    } catch {
      throw new ApiError(502, 'server_error', 'backend_error', 'The GPU service sent an image that is not valid base64.');
    }
    const params = result.params;
    return {
      key: imageObjectKey({ tenant: job.tenant ?? 'local', taskId: job.id, index: image.index, extension, createdAt }),
      bytes,
      contentType: image.mime_type,
      customMetadata: fitCustomMetadata({
        task_id: job.id,
        tenant: job.tenant,
        key_name: input.keyName,
        index: image.index,
        seed: image.seed,
        model: params.model,
        model_hash: params.model_hash,
        mode: params.mode,
        width: params.width,
        height: params.height,
        steps: params.steps,
        sampler: params.sampler,
        scheduler: params.scheduler,
        cfg_scale: params.cfg_scale,
        guidance: job.guidance,
        sample_method: request.sample_method,
        schedule_method: request.schedule_method,
        quality: request.quality,
        style: request.style,
        output_format: request.output_format,
        rng: params.rng,
        engine_version: params.engine_version,
        onnxruntime_version: params.onnxruntime_version,
        created_at: createdAt.toISOString(),
        user: request.user,
        prompt: params.prompt,
        negative_prompt: params.negative_prompt,
      }),
    };
  });
}
