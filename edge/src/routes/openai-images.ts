import { hasScope, MODELS_DOWNLOAD_SCOPE } from '@image-api/shared/api/api-key';
import { checkOpenAiOutputOptions, encoderQuality, openAiBackgroundJobFields, openAiResponseFields, responseQuality } from '../inputs/openai-options';
import { zValidator } from '@hono/zod-validator';
import { Hono, type Context } from 'hono';
import {
  ImageGenerationRequestSchema,
  PREVIEW_MODES,
  QUALITY_STEPS,
  type ImageData,
  type ImageGenerationRequest,
  type ImagesResponse,
} from '@image-api/shared/api/openai-images';
import type { BackendModel } from '@image-api/shared/api/models';
import { formatSize, type ImageSize } from '@image-api/shared/api/size';
import type { GenerationJobInput } from '@image-api/shared/generation-job';
import { samplerJobFields } from '@image-api/shared/sampler-names';
import { OPENAI_ADDON_STYLE, publicAddonParam, requestAddonJobFields } from '../addons/request-addons';
import type { AppEnv } from '../env';
import { invalidParameter, ApiError } from '../lib/api-error';
import { randomSeed } from '../lib/crypto';
import { readEdgeConfig, resolveLinkTtl } from '../lib/edge-config';
import type { ModelCatalog } from '../gpu/model-catalog';
import { applyGenerationImage, resolveGenerationImage } from '../inputs/generation-image';
import { storeTaskInputs } from '../inputs/input-objects';
import { publicImageParam } from '../inputs/input-errors';
import { acquireGenerationSlot } from '../middleware/rate-limit';
import { jobCost, resolveOpenAiSampling, resolveSeed } from '../inputs/image-job';
import { validationHook } from '../middleware/validation-hook';
import { keepRunning } from '../tasks/background';
import { runGeneration, type RunGenerationDeps, type RunGenerationInput } from '../tasks/run-generation';
import { settleSlot, streamTask } from '../tasks/stream-task';
import { signedTaskImages, type LinkSigning } from '../tasks/task-json';
import { TaskStore } from '../tasks/task-store';
import { jobForStorage } from '../tasks/task-types';

export { computeUnits } from '../tasks/image-usage';

/** Dependencies of the OpenAI images routes, owned by the app instance. */
export interface OpenAiImagesRouteOptions {
  catalog: ModelCatalog;
  /** Clock in unix milliseconds (tests may pin it). */
  now?: () => number;
}

/** `style` of the task rows this route creates. */
export const OPENAI_GENERATIONS_STYLE = 'openai.generations';

/**
 * POST /v1/images/generations (and the /api/images/generations alias, mounted by the app):
 * validate → rate-limit slot → resolve model, size, sampler, seed and steps → a QUEUED task row →
 * the task runner (tasks/run-generation.ts: GPU service, R2, row) → the answer. Critical path of a JSON
 * answer (README "Performance", `npm run bench -- --edge`): key lookup, rate-limit admission, the job
 * submitted while the row's insert is under way, R2 put, one final row write; the running-state writes,
 * the slot's release and the lease heartbeat are off it (waitUntil). The images and the SUCCEED row are
 * stored before the answer is sent, so an edge that dies right after it loses nothing. Every response
 * carries `x-task-id`: GET /v1/tasks/:id and /v1/tasks/:id/events reattach to it.
 *
 * - JSON (default): `{created, data: [{url | b64_json, seed}], usage, receipt}` once the images are
 *   stored. The run continues under waitUntil when the client disconnects, so the images are not
 *   lost: the task ends SUCCEED and GET /v1/tasks/:id gives links to them.
 * - `stream: true`: Server-Sent Events (tasks/openai-image-stream.ts) once the GPU service has
 *   admitted the job; refusals before that (400, 404 model_not_found, 429, 503 queue_full) are
 *   normal JSON errors with their status, later failures an `error` event.
 * - `loras` / `embeddings` / `vae` (extension, shared/src/api/addon-fields.ts) and `<lora:name:strength>` prompt
 *   tags: checked against the listing before a slot is taken (400 naming `loras.1.model_name`, `vae`, `prompt`).
 * - `image` (URL, data: URL or base64; an array uses its first): img2img of that image with
 *   `strength`, size defaulting to the image's (inputs/generation-image.ts); the body is capped at
 *   20 MiB and the image checked like every input (inputs/).
 * The key's rate-limit slot is released when the run ends. Errors are ApiErrors rendered by the
 * error handler.
 */
export function openAiImagesRoutes(options: OpenAiImagesRouteOptions): Hono<AppEnv> {
  // Looked up per call so a faked clock (vi.setSystemTime) applies.
  const now = options.now ?? (() => Date.now());
  const routes = new Hono<AppEnv>();

  routes.post('/generations', zValidator('json', ImageGenerationRequestSchema, validationHook), async (c) => {
    const request = c.req.valid('json');
    checkOpenAiOutputOptions(request);
    const config = readEdgeConfig(c.env);
    const apiKey = c.get('apiKey');
    const taskId = crypto.randomUUID();
    c.header('x-task-id', taskId);
    const linkTtlSeconds = resolveLinkTtl(request.link_ttl_seconds, config);

    // `image` (URL or base64) makes it img2img; checked and fetched before any slot is taken.
    const source = await resolveGenerationImage(c.env, request.image);
    // The job (and so its compute cost: steps × megapixels × images) is known before a slot is taken.
    const gpu = options.catalog.backendPool(config);
    const model = await options.catalog.findCheckpoint(gpu, gpu.key, request.model ?? config.defaultModel);
    const job = buildGenerationJob({ request, model, taskId, tenant: apiKey.tenant });
    job.download_any_repo = hasScope(apiKey, MODELS_DOWNLOAD_SCOPE);
    Object.assign(job, await requestAddonJobFields(options.catalog, gpu, request, request.prompt, OPENAI_ADDON_STYLE));
    Object.assign(job, await openAiBackgroundJobFields(request, options.catalog, gpu));
    if (source) applyGenerationImage(job, source, { model, size: request.size, strength: request.strength });
    const slot = await acquireGenerationSlot(c, request.n, jobCost(job), { taskId });
    let deps: RunGenerationDeps;
    let input: RunGenerationInput;
    try {
      const timing = c.get('timing');
      const store = new TaskStore(c.env.DB, { now, timing });
      const { image: _image, ...storedRequest } = request;
      const task = store.newRow(
        {
          id: taskId,
          owner: { tenant: apiKey.tenant, key_hash: apiKey.key_hash },
          key_name: apiKey.name,
          style: OPENAI_GENERATIONS_STYLE,
          request: { request: storedRequest, job: jobForStorage(job) },
        },
        // One configured GPU service: the job can only go there, so the insert records it (no separate write).
        { submitting: true, backend: gpu.urls.length === 1 ? gpu.urls[0] : undefined },
      );
      let inserted: RunGenerationInput['inserted'];
      if (source || request.stream) {
        // Inputs are stored under the task's folder, and a stream hands out x-task-id as soon as the job is
        // admitted: the row must exist first.
        await store.insert(task);
        if (source) await storeTaskInputs(c.env.IMAGES, task, [{ image: source, role: 'image' }]);
        inserted = Promise.resolve();
      } else {
        // JSON answer: nobody knows the task id before the answer, so the row is inserted while the job is
        // already on its way: the runner starts this insert once the job's POST has gone out, and writes the
        // row again only after it (RunGenerationInput.inserted; a failed insert is its 500 task_store_failed).
        // Untimed: only the time the runner waits for it counts in Server-Timing's `db`.
        inserted = () => store.untimed().insert(task);
      }
      deps = { store, gpu, bucket: c.env.IMAGES, now, serverTiming: timing, waitUntil: (work) => keepRunning(c, work) };
      input = {
        task,
        job,
        inserted,
        metadata: requestMetadata(request),
        publicParam: (param) => publicAddonParam(publicImageParam(param, { init_image: 'image' }), OPENAI_ADDON_STYLE),
      };
    } catch (error) {
      await slot?.release(false);
      throw error;
    }

    const signing = linkSigning(c, config.linkSigningSecret, linkTtlSeconds, now);
    if (request.stream) {
      return streamTask(c, {
        deps,
        input,
        kind: 'image_generation',
        quality: responseQuality(request.quality),
        responseFormat: request.response_format,
        outputFormat: request.output_format,
        partialImages: request.preview === 'none' ? 0 : (request.partial_images ?? null),
        slot,
        signing,
        now,
      });
    }

    const run = runGeneration(deps, input);
    keepRunning(c, settleSlot(run, slot));
    const { result, taskResult } = await run;
    const links = request.response_format === 'url' ? await signedTaskImages(taskResult, signing()) : [];
    const data: ImageData[] = result.images.map((image, i) =>
      request.response_format === 'b64_json' ? { b64_json: image.b64, seed: image.seed } : { url: links[i].url, seed: image.seed },
    );
    const body: ImagesResponse = {
      created: Math.floor(taskResult.finished_at / 1000),
      ...openAiResponseFields(request, taskResult.receipt),
      data,
      usage: taskResult.usage,
      receipt: taskResult.receipt,
    };
    return c.json(body, 200);
  });

  return routes;
}

/** Link signing for this request's answers (the clock is read when links are made). */
function linkSigning(c: Context<AppEnv>, secret: string, ttlSeconds: number, now: () => number): () => LinkSigning {
  const origin = new URL(c.req.url).origin;
  return () => ({ origin, secret, ttlSeconds, nowSeconds: now() / 1000 });
}

/** Request fields kept with each stored image (R2 custom metadata) besides the receipt. */
function requestMetadata(request: ImageGenerationRequest): Record<string, string | number | undefined> {
  return {
    sample_method: request.sample_method,
    schedule_method: request.schedule_method,
    quality: request.quality,
    style: request.style,
    moderation: request.moderation,
    background: request.background,
    user: request.user,
  };
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
 * Translate a validated OpenAI-style request into the GenerationJob (docs/architecture.md, "One
 * internal job"):
 * - size: request size or the model's native_size; width × height must be ≤ model.max_pixels;
 * - sampler/scheduler: stable-diffusion.cpp names resolved by shared/src/sampler-names.ts;
 * - seed: given (≥ 0, up to 2^64 − 1, exact) or random in [0, 2^32 − 1]; seed + n − 1 must stay ≤ 2^64 − 1;
 * - steps / cfg_scale / sampler / schedule (and guidance): as given, else QUALITY_STEPS[quality] for steps, else the
 *   model's per-model default (resolveOpenAiSampling), else the GPUStack defaults;
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
  // Unknown names are a 400 naming the field and listing every accepted name.
  const sampling = resolveOpenAiSampling(model, request);
  const seed = resolveSeed(request.seed, request.n, input.pickSeed ?? randomSeed);
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
    steps: sampling.steps,
    ...samplerJobFields(sampling.resolved),
    cfg_scale: sampling.cfg_scale,
    output: { format: request.output_format, quality: encoderQuality(request.output_compression) },
    // Previews cost GPU time: only for streams that will send them.
    preview: request.stream && request.partial_images !== 0 ? PREVIEW_MODES[request.preview] : 'none',
  };
  const guidance = request.guidance ?? sampling.guidance;
  if (guidance !== undefined) job.guidance = guidance;
  return job;
}
