import type { Context } from 'hono';
import type { ImageData, ImageUsage } from '../../../shared/src/api/openai-images';
import type { GenerationJobInput, GenerationResult } from '../../../shared/src/generation-job';
import type { AppEnv } from '../env';
import type { GpuClient } from '../gpu/backend-client';
import { ApiError } from '../lib/api-error';
import { decodeBase64 } from '../lib/base64';
import type { EdgeConfig } from '../lib/edge-config';
import { acquireGenerationSlot } from '../middleware/rate-limit';
import { fitCustomMetadata, FORMAT_EXTENSIONS, imageObjectKey, storeImagesAtomically, type StoredImage } from '../storage/r2-images';
import { signFileLink } from '../storage/signed-links';
import { inputStoredImages, type TaskInput } from './input-objects';

/** Inputs of {@link runInputJob}. */
export interface RunInputJobOptions {
  config: EdgeConfig;
  gpu: GpuClient;
  /** The job (id = task id, tenant = the key's tenant), init_image/mask inline. */
  job: GenerationJobInput;
  /** Which public API made it ("openai.edits", "openai.variations", "img2img", "openai.generations"). */
  style: string;
  /** The images that went in, stored beside the outputs (input-<n>.<ext>). */
  inputs: readonly TaskInput[];
  responseFormat: 'url' | 'b64_json';
  /** Signed-link lifetime, seconds (resolveLinkTtl). */
  linkTtlSeconds: number;
  /** Extra R2 custom metadata per output image (request fields such as user, quality, sampler names). */
  metadata?: Record<string, string | number | undefined>;
  /** Clock in unix ms. */
  now: () => number;
}

/** What {@link runInputJob} returns: the response parts every image route shares. */
export interface RunInputJobResult {
  /** Unix seconds. */
  created: number;
  data: ImageData[];
  usage: ImageUsage;
  result: GenerationResult;
}

/** steps × megapixels × images, 3 decimals (issue 6's compute unit). */
function computeUnits(steps: number, width: number, height: number, images: number): number {
  return Math.round(steps * ((width * height) / 1_000_000) * images * 1000) / 1000;
}

/**
 * Run one image-input job synchronously for a route: take a rate-limit slot (429 before any work),
 * store the input images in R2 (`<tenant>/<date>/<task>/input-<n>.<ext>`; kept with the task even if
 * the generation then fails), run the job on the GPU service, store every output (all or nothing)
 * with the generation parameters as metadata, and build `data` (signed links or base64, with seeds)
 * and `usage`. Sets `x-task-id` on the response.
 * @throws ApiError: 429 from the rate limiter, the GPU service's errors (backend-client.ts),
 *   500 `storage_failed`.
 */
export async function runInputJob(c: Context<AppEnv>, options: RunInputJobOptions): Promise<RunInputJobResult> {
  const { job, config } = options;
  const apiKey = c.get('apiKey');
  const tenant = job.tenant ?? apiKey.tenant;
  c.header('x-task-id', job.id);
  const slot = await acquireGenerationSlot(c, job.batch_size ?? 1);
  let succeeded = false;
  let result: GenerationResult;
  let outputs: StoredImage[];
  let createdAt: Date;
  try {
    const acceptedAt = new Date(options.now());
    if (options.inputs.length > 0) {
      await storeImagesAtomically(
        c.env.IMAGES,
        inputStoredImages({ tenant, taskId: job.id, keyName: apiKey.name, createdAt: acceptedAt, inputs: options.inputs }),
      );
    }
    result = await options.gpu.runJob(job, c.req.raw.signal);
    createdAt = new Date(options.now());
    outputs = outputStoredImages(job, result, acceptedAt, { ...options.metadata, style: options.style, key_name: apiKey.name, tenant });
    await storeImagesAtomically(c.env.IMAGES, outputs);
    succeeded = true;
  } finally {
    await slot?.release(succeeded);
  }

  const origin = new URL(c.req.url).origin;
  const data: ImageData[] = [];
  for (const [i, image] of result.images.entries()) {
    if (options.responseFormat === 'b64_json') {
      data.push({ b64_json: image.b64, seed: image.seed });
    } else {
      const link = await signFileLink({
        origin,
        key: outputs[i].key,
        secret: config.linkSigningSecret,
        ttlSeconds: options.linkTtlSeconds,
        nowSeconds: createdAt.getTime() / 1000,
      });
      data.push({ url: link.url, seed: image.seed });
    }
  }
  const params = result.params;
  return {
    created: Math.floor(createdAt.getTime() / 1000),
    data,
    usage: {
      images: result.images.length,
      steps: params.steps,
      width: params.width,
      height: params.height,
      compute_units: computeUnits(params.steps, params.width, params.height, result.images.length),
    },
    result,
  };
}

/** The R2 objects of a result, in the task's date folder, with the receipt as custom metadata. */
function outputStoredImages(
  job: GenerationJobInput,
  result: GenerationResult,
  createdAt: Date,
  extra: Record<string, string | number | undefined>,
): StoredImage[] {
  const format = job.output?.format ?? 'png';
  const params = result.params;
  return result.images.map((image) => {
    let bytes: Uint8Array;
    try {
      bytes = decodeBase64(image.b64);
    } catch {
      throw new ApiError(502, 'server_error', 'backend_error', 'The GPU service sent an image that is not valid base64.');
    }
    return {
      key: imageObjectKey({ tenant: String(extra.tenant), taskId: job.id, index: image.index, extension: FORMAT_EXTENSIONS[format], createdAt }),
      bytes,
      contentType: image.mime_type,
      customMetadata: fitCustomMetadata({
        ...extra,
        task_id: job.id,
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
        strength: params.strength ?? job.strength,
        output_format: format,
        rng: params.rng,
        engine_version: params.engine_version,
        onnxruntime_version: params.onnxruntime_version,
        created_at: createdAt.toISOString(),
        prompt: params.prompt,
        negative_prompt: params.negative_prompt,
      }),
    };
  });
}
