import { hasScope, MODELS_DOWNLOAD_SCOPE } from '@image-api/shared/api/api-key';
import { zValidator } from '@hono/zod-validator';
import { Hono, type Context } from 'hono';
import {
  ASYNC_HIRES_UPSCALERS,
  AsyncImg2ImgBodySchema,
  AsyncInpaintingBodySchema,
  AsyncModelQuerySchema,
  AsyncTaskResultQuerySchema,
  AsyncTxt2ImgBodySchema,
  type AsyncExtra,
  type AsyncGenerationRequest,
  type AsyncModel,
  type AsyncModelList,
  type AsyncSubmitResponse,
  type AsyncTaskType,
} from '@image-api/shared/api/async-tasks';
import type { BackendModel } from '@image-api/shared/api/models';
import type { GenerationJobInput } from '@image-api/shared/generation-job';
import type { AppEnv } from '../env';
import type { ModelCatalog } from '../gpu/model-catalog';
import { checkHfDownloadAllowed } from '../gpu/hf-download-check';
import { allowHttpImageUrls } from '../inputs/url-guard';
import { checkMaskHeader, checkMaskPixels } from '../inputs/mask-check';
import { inputStoredImages, type TaskInput } from '../inputs/input-objects';
import { resolveImageInput } from '../inputs/resolve-image-input';
import { ApiError, invalidParameter, unsupportedParameter } from '../lib/api-error';
import { readEdgeConfig } from '../lib/edge-config';
import { acquireGenerationSlot, type GenerationCost } from '../middleware/rate-limit';
import { validationHook } from '../middleware/validation-hook';
import { ASYNC_TASK_STYLES, asyncTaskEnv, type AsyncTaskEnv, type AsyncTaskRecordInput } from '../queue/async-task-record';
import { asyncTaskResult } from '../queue/async-task-result';
import { buildAsyncJob, SDXL_NATIVE_SIDE } from '../queue/build-async-job';
import { ASYNC_ADDON_STYLE, listsEveryAddon } from '../addons/request-addons';
import { storeImagesAtomically } from '../storage/r2-images';
import { usableModels } from '../postprocess/postprocess-options';
import { reconcileOnRead } from '../tasks/reconcile-on-read';
import { TaskStore } from '../tasks/task-store';
import { allowLocalWebhookUrls, checkWebhookUrl } from '../webhooks/webhook-url';

/** Dependencies shared by the route factories (see app.ts). */
export interface RouteOptions {
  catalog: ModelCatalog;
  /** Clock in unix milliseconds (tests may pin it). */
  now?: () => number;
}

/** 404 for a task that does not exist, is not an async task, or belongs to another key (indistinguishable on purpose). */
function taskNotFound(id: string): ApiError {
  return new ApiError(404, 'not_found_error', 'task_not_found', `No task "${id}" for this API key.`, 'task_id');
}

/**
 * The async task API (Novita / PPInfra v3 style, README "Public API"), mounted under /v3:
 * - POST /v3/async/txt2img | img2img | inpainting: `{extra, request}` → `{task_id}` at once. Everything
 *   is checked before anything is queued (400 naming the dotted field, 404 `model_not_found` for
 *   request.model_name); img2img/inpainting inputs (base64 or https URL under the SSRF rules) are
 *   checked by magic bytes and header size, the mask against the image, and stored in R2 beside the
 *   task's outputs. The key's rate limits (requests, images per day, compute units) are charged at
 *   submit; then a QUEUED task row (D1) is written and a Queue message sent.
 * - GET /v3/async/task-result?task_id= → the task's status, progress, eta, signed image links and seed
 *   (queue/async-task-result.ts). Another key's task is 404. A PROCESSING task whose consumer stopped
 *   responding (tasks/task-lease.ts) is reconciled here with the GPU service (tasks/task-reconcile.ts):
 *   finished from the job's result, re-queued while attempts remain, else FAILED.
 * - GET /v3/model?filter.types=checkpoint,lora,vae,textualinversion,matting,facerestore,upscaler → the GPU service's models of those
 *   kinds in Novita's shape ({models: [{sd_name, type, …}]}).
 */
export function asyncTaskRoutes(options: RouteOptions): Hono<AppEnv> {
  const now = options.now ?? (() => Date.now());
  const routes = new Hono<AppEnv>();

  routes.post('/async/txt2img', zValidator('json', AsyncTxt2ImgBodySchema, validationHook), async (c) => {
    const body = c.req.valid('json');
    return c.json(await submit(c, 'TXT_TO_IMG', body.extra, body.request, options, now));
  });
  routes.post('/async/img2img', zValidator('json', AsyncImg2ImgBodySchema, validationHook), async (c) => {
    const body = c.req.valid('json');
    return c.json(await submit(c, 'IMG_TO_IMG', body.extra, body.request, options, now));
  });
  routes.post('/async/inpainting', zValidator('json', AsyncInpaintingBodySchema, validationHook), async (c) => {
    const body = c.req.valid('json');
    return c.json(await submit(c, 'INPAINTING', body.extra, body.request, options, now));
  });

  routes.get('/async/task-result', zValidator('query', AsyncTaskResultQuerySchema, validationHook), async (c) => {
    const env = asyncTaskEnv(c.env);
    const { task_id: id } = c.req.valid('query');
    const apiKey = c.get('apiKey');
    const store = new TaskStore(env.DB, { now });
    let row = await store.get(id, { tenant: apiKey.tenant, key_hash: apiKey.key_hash });
    if (!row || !row.style.startsWith('async.')) throw taskNotFound(id);
    const config = readEdgeConfig(env);

    // A task whose consumer died is reconciled with the GPU service (re-queued while attempts remain, else FAILED).
    row = await reconcileOnRead({ env, catalog: options.catalog, store, now, waitUntil: (work) => c.executionCtx.waitUntil(work) }, row);
    return c.json(
      await asyncTaskResult(row, {
        origin: new URL(c.req.url).origin,
        secret: config.linkSigningSecret,
        ttlSeconds: config.linkTtlSeconds,
        nowSeconds: now() / 1000,
      }),
    );
  });

  routes.get('/model', zValidator('query', AsyncModelQuerySchema, validationHook), async (c) => {
    const kinds = c.req.valid('query')['filter.types'];
    const config = readEdgeConfig(c.env);
    const pool = options.catalog.backendPool(config);
    const models = await options.catalog.list(pool, pool.key);
    const body: AsyncModelList = { models: models.filter((model) => kinds.includes(model.kind)).map(novitaModel) };
    return c.json(body);
  });

  return routes;
}

/** Novita's label of one architecture name the GPU service reports, or undefined for one it has no label for. */
function baseModelLabel(architecture: string): string | undefined {
  if (/^FLUX\.1/.test(architecture)) return 'FLUX.1';
  if (/3\.5/.test(architecture)) return 'SD 3.5';
  if (/Diffusion 3/.test(architecture)) return 'SD 3';
  if (/XL/.test(architecture)) return 'SDXL';
  if (/2\.x/.test(architecture)) return 'SD 2.1';
  if (/1\.x/.test(architecture)) return 'SD 1.5';
  return undefined;
}

/**
 * Novita's `base_model` label: from the architecture the GPU service detected (SD 1.x → "SD 1.5", SD 2.x →
 * "SD 2.1", SDXL → "SDXL", FLUX.1, SD 3.5 → "SD 3.5", other SD 3.x → "SD 3"); an add-on that fits several (a 4-channel VAE: "Stable
 * Diffusion 1.x / Stable Diffusion 2.x / Stable Diffusion XL (4 latent channels)") lists them all ("SD 1.5, SD 2.1,
 * SDXL"). A checkpoint without one (ONNX folders) is told by its native size; an add-on without one is "unknown".
 */
function baseModelOf(model: BackendModel): string {
  const labels = [...new Set((model.architecture ?? '').replace(/\s*\(.*\)$/, '').split(' / ').map(baseModelLabel).filter((l) => l !== undefined))];
  if (labels.length > 0) return labels.join(', ');
  if (model.kind !== 'checkpoint') return 'unknown';
  return Math.min(...model.native_size) >= SDXL_NATIVE_SIDE ? 'SDXL' : 'SD 1.5';
}

/**
 * One GPU service model in Novita's /v3/model shape (see AsyncModelSchema): `sd_name` is what requests
 * pass as model_name / loras[].model_name / sd_vae / embeddings[].model_name.
 */
export function novitaModel(model: BackendModel): AsyncModel {
  return {
    id: model.id,
    name: model.id,
    sd_name: model.id,
    type: model.kind,
    status: model.error ? 0 : 1,
    base_model: baseModelOf(model),
    capabilities: model.capabilities,
    native_size: model.native_size,
    max_pixels: model.max_pixels,
    ...(model.architecture ? { architecture: model.architecture } : {}),
    ...(model.role ? { role: model.role } : {}),
    ...(model.error ? { reason: model.error } : {}),
  };
}

/** Exactly one of two alternative fields, e.g. image_base64 / image_url. @throws ApiError 400 naming the first. */
function oneOf(request: AsyncGenerationRequest, base64Field: 'image_base64' | 'mask_image_base64', urlField: 'image_url' | 'mask_image_url'): { value: string; param: string } {
  const base64 = request[base64Field];
  const url = request[urlField];
  if (base64 !== undefined && url !== undefined) {
    throw invalidParameter(`request.${base64Field}`, `Send either request.${base64Field} or request.${urlField}, not both.`);
  }
  if (base64 !== undefined) return { value: base64, param: `request.${base64Field}` };
  if (url !== undefined) {
    // A base64 string in the URL field would be "decoded" by resolveImageInput; insist on a URL there.
    if (!/^https?:\/\//i.test(url.trim())) throw invalidParameter(`request.${urlField}`, `request.${urlField} must be an https:// URL.`, 'invalid_image_url');
    return { value: url, param: `request.${urlField}` };
  }
  throw invalidParameter(`request.${base64Field}`, `request.${base64Field} or request.${urlField} is required.`, 'missing_parameter');
}

/** Steps and size the rate limiter charges: both hires passes at the larger size, img2img ≈ steps × strength (A1111). */
function costOf(job: GenerationJobInput): GenerationCost {
  const firstPass = job.mode === 'txt2img' ? job.steps : Math.max(1, Math.ceil(job.steps * (job.strength ?? 1)));
  if (!job.hires_fix) return { steps: firstPass, width: job.width, height: job.height };
  return { steps: firstPass + (job.hires_fix.steps ?? job.steps), width: job.hires_fix.target_width, height: job.hires_fix.target_height };
}

/** The fields kept in request_json for debugging (inline images dropped: they are in R2). */
function requestSummary(request: AsyncGenerationRequest): Record<string, unknown> {
  const { image_base64: _image, mask_image_base64: _mask, ...rest } = request;
  return rest;
}

/**
 * Validate, charge, store and enqueue one async task. Order matters: every 400 comes before the rate
 * limiter is charged except the mask's pixel scan, which costs CPU and so runs only once the request is
 * admitted (its 400 counts against the request rate, the images are refunded), and the row is written before the message is sent (a consumer never sees a
 * message without its row). If sending fails the task is FAILED at once and the client gets 503.
 */
async function submit(
  c: Context<AppEnv>,
  taskType: AsyncTaskType,
  extra: AsyncExtra,
  request: AsyncGenerationRequest,
  options: RouteOptions,
  now: () => number,
): Promise<AsyncSubmitResponse> {
  const env: AsyncTaskEnv = asyncTaskEnv(c.env);
  const config = readEdgeConfig(env);
  const apiKey = c.get('apiKey');
  const allowHttp = allowHttpImageUrls(env);
  const taskId = crypto.randomUUID();
  c.header('x-task-id', taskId);

  let webhookUrl: string | null = null;
  if (extra.webhook) {
    if (!env.WEBHOOK_SIGNING_SECRET) {
      throw unsupportedParameter('extra.webhook', 'Webhooks are not configured on this deployment (no WEBHOOK_SIGNING_SECRET); poll GET /v3/async/task-result instead.');
    }
    webhookUrl = checkWebhookUrl(extra.webhook.url, { allowHttp, allowLoopback: allowLocalWebhookUrls(env) }).href;
  }

  const pool = options.catalog.backendPool(config);
  let model: BackendModel;
  try {
    model = await options.catalog.findCheckpoint(pool, pool.key, request.model_name);
  } catch (error) {
    if (error instanceof ApiError && error.code === 'model_not_found') {
      throw new ApiError(404, 'not_found_error', 'model_not_found', `${error.message.replace('GET /v1/models', 'GET /v3/model?filter.types=checkpoint')}`, 'request.model_name');
    }
    throw error;
  }
  // The job reaches the GPU service only from the Queue consumer: a download it would refuse is refused now.
  const anyRepo = hasScope(apiKey, MODELS_DOWNLOAD_SCOPE);
  checkHfDownloadAllowed(request.model_name, model, await options.catalog.list(pool, pool.key), anyRepo, 'request.model_name');
  const addonFields = { loras: request.loras, embeddings: request.embeddings, vae: request.sd_vae };
  // A listing that lacks a named add-on, an upscaler model, the matting model or the face models a request needs is
  // fetched again once.
  const upscaler = request.hires_fix?.upscaler;
  const namesUpscalerModel = upscaler !== undefined && !Object.prototype.hasOwnProperty.call(ASYNC_HIRES_UPSCALERS, upscaler);
  const catalog = await options.catalog.listHaving(
    pool,
    pool.key,
    (models) =>
      listsEveryAddon(addonFields, request.prompt, ASYNC_ADDON_STYLE, models) &&
      (!namesUpscalerModel || usableModels(models, 'upscaler').some((m) => m.id === upscaler)) &&
      (!request.enable_transparent_background || usableModels(models, 'matting').length > 0) &&
      (!request.restore_faces || ['detector', 'restorer'].every((role) => usableModels(models, 'facerestore').some((m) => m.role === role))),
  );
  const job = buildAsyncJob({ taskType, request, extra, model, catalog, taskId, tenant: apiKey.tenant });
  job.download_any_repo = anyRepo;

  const inputs: TaskInput[] = [];
  let maskParam = 'mask';
  if (taskType !== 'TXT_TO_IMG') {
    const source = oneOf(request, 'image_base64', 'image_url');
    const image = await resolveImageInput(source.value, { param: source.param, allowHttp });
    inputs.push({ image, role: 'image' });
    if (taskType === 'INPAINTING') {
      const maskSource = oneOf(request, 'mask_image_base64', 'mask_image_url');
      const mask = await resolveImageInput(maskSource.value, { param: maskSource.param, allowHttp });
      maskParam = maskSource.param;
      await namingMask(maskParam, async () => checkMaskHeader(image, mask, 'white'));
      inputs.push({ image: mask, role: 'mask' });
    }
  }

  // Admission only (requests, images per day, compute units), never refused for concurrency: the
  // task waits in the Queue, and its consumer takes a running slot (startTaskRun) when the key runs
  // fewer jobs than its concurrency limit. The charge stays with the task (lease = task id) until it
  // ends: kept when it succeeds, refunded when it fails or is cancelled (settleTaskLease).
  const slot = await acquireGenerationSlot(c, request.image_num, costOf(job), { taskId, holdConcurrency: false });
  let queued = false;
  try {
    // The mask's pixel scan costs CPU: only once the rate limiter admitted the request (issue 10 item 5).
    const mask = inputs.find((input) => input.role === 'mask');
    if (mask) await namingMask(maskParam, () => checkMaskPixels(mask.image, 'white'));
    const createdAt = now();
    const stored = inputStoredImages({ tenant: apiKey.tenant, taskId, keyName: apiKey.name, createdAt: new Date(createdAt), inputs });
    if (stored.length > 0) await storeImagesAtomically(env.IMAGES, stored);
    const record: AsyncTaskRecordInput = {
      kind: 'async',
      task_type: taskType,
      job,
      inputs: {
        init_image: stored.find((_, i) => inputs[i].role === 'image')?.key,
        mask: stored.find((_, i) => inputs[i].role === 'mask')?.key,
      },
      response_image_type: extra.response_image_type,
      origin: new URL(c.req.url).origin,
      request: requestSummary(request),
    };
    const store = new TaskStore(env.DB, { now });
    await store.create({
      id: taskId,
      owner: { tenant: apiKey.tenant, key_hash: apiKey.key_hash },
      key_name: apiKey.name,
      style: ASYNC_TASK_STYLES[taskType],
      request: record,
      webhook_url: webhookUrl,
    });
    try {
      await env.ASYNC_TASKS.send({ task_id: taskId });
    } catch (error) {
      console.error(`task ${taskId}: enqueueing failed`, error);
      const failure = new ApiError(503, 'server_error', 'queue_unavailable', 'The task queue is unavailable; the task was not accepted. Please retry.', null, { 'retry-after': '5' });
      await store.fail(taskId, failure.toBody().error);
      throw failure;
    }
    queued = true;
  } finally {
    if (!queued) await slot?.release(false);
  }
  return { task_id: taskId };
}

/** A mask check, with its errors naming the request field the mask came from instead of "mask". */
async function namingMask(param: string, check: () => Promise<void>): Promise<void> {
  try {
    await check();
  } catch (error) {
    if (error instanceof ApiError && error.param === 'mask') {
      throw new ApiError(error.status, error.type, error.code, error.message, param, error.headers);
    }
    throw error;
  }
}
