import { hasScope, MODELS_DOWNLOAD_SCOPE } from '@image-api/shared/api/api-key';
import { samplerJobFields } from '@image-api/shared/sampler-names';
import { zValidator } from '@hono/zod-validator';
import { Hono } from 'hono';
import { IMG2IMG_DEFAULTS, Img2ImgRequestSchema, type Img2ImgParameters, type Img2ImgRequest, type Img2ImgResponse } from '@image-api/shared/api/img2img';
import type { BackendModel } from '@image-api/shared/api/models';
import type { GenerationJobInput } from '@image-api/shared/generation-job';
import { OPENAI_ADDON_STYLE, publicAddonParam, requestAddonJobFields } from '../addons/request-addons';
import type { AppEnv } from '../env';
import type { ModelCatalog } from '../gpu/model-catalog';
import { encodeBase64 } from '../lib/base64';
import { unsupportedParameter } from '../lib/api-error';
import { readEdgeConfig, resolveLinkTtl } from '../lib/edge-config';
import { requireCapability, resolveOutputSize, resolveSeed } from '../inputs/image-job';
import { resolveSampling, type ResolvedSampling } from '../inputs/sampling-defaults';
import { modelDefaults } from '@image-api/shared/model-defaults';
import type { TaskInput } from '../inputs/input-objects';
import { resolveImageInput, type InputImage } from '../inputs/resolve-image-input';
import { runInputJob } from '../inputs/run-input-job';
import { publicImageParam } from '../inputs/input-errors';
import { allowHttpImageUrls } from '../inputs/url-guard';
import { validationHook } from '../middleware/validation-hook';

/** Dependencies shared by the route factories (see app.ts). */
export interface RouteOptions {
  catalog: ModelCatalog;
  /** Clock in unix milliseconds (tests may pin it). */
  now?: () => number;
}

/**
 * POST /v1/img2img: the ComfyUI-named API of the img2img seed (README "Public API"), JSON, body capped
 * at 20 MiB. Defaults exactly as the seed (steps, cfg, sampler_name and scheduler: the model's per-model default
 * first, shared/src/model-defaults.ts): seed 0 (a real seed), steps 20, batch_size 1, 512×512,
 * sampler_name euler, cfg 8, denoise_strength 0.75, scheduler normal, the seed's prompt and
 * negative prompt, image_url "" (= text-to-image). image_url may be https (http only with
 * ALLOW_HTTP_IMAGE_URLS="true"), a data: URL or base64; the SSRF rules of inputs/url-guard.ts apply.
 * width × height is checked against the model's max_pixels (400 `width`), never clamped; the source
 * image is fitted to it (cover + centre crop, by the GPU service). ComfyUI step semantics: exactly
 * `steps` steps run whatever the denoise strength (strength_schedule 'steps').
 * Response: `{created, data: [{url | b64_json, seed}], parameters, usage, receipt}` with `x-task-id`
 * (a task of style "img2img", readable at /v1/tasks/:id).
 */
export function img2imgRoutes(options: RouteOptions): Hono<AppEnv> {
  const now = options.now ?? (() => Date.now());
  const routes = new Hono<AppEnv>();
  routes.post('/', zValidator('json', Img2ImgRequestSchema, validationHook), async (c) => {
    const request = c.req.valid('json');
    const config = readEdgeConfig(c.env);
    const apiKey = c.get('apiKey');
    const linkTtlSeconds = resolveLinkTtl(request.link_ttl_seconds, config);

    const source = request.image_url.trim() === '' ? null : await resolveImageInput(request.image_url, { param: 'image_url', allowHttp: allowHttpImageUrls(c.env) });
    if (!source && request.denoise_strength !== undefined && request.denoise_strength !== 1) {
      throw unsupportedParameter('denoise_strength', 'denoise_strength applies to a source image (image_url); text-to-image starts from pure noise. Leave it out, send 1, or give image_url.');
    }
    const denoiseStrength = source ? (request.denoise_strength ?? IMG2IMG_DEFAULTS.denoise_strength) : 1;
    const gpu = options.catalog.backendPool(config);
    const model = await options.catalog.findCheckpoint(gpu, gpu.key, request.model ?? config.defaultModel);
    const job = buildComfyJob(request, model, source, { taskId: crypto.randomUUID(), tenant: apiKey.tenant });
    const sampling = resolveComfySampling(request, model);
    job.download_any_repo = hasScope(apiKey, MODELS_DOWNLOAD_SCOPE);
    Object.assign(job, await requestAddonJobFields(options.catalog, gpu, request, request.prompt, OPENAI_ADDON_STYLE));
    const inputs: TaskInput[] = source ? [{ image: source, role: 'image' }] : [];

    const run = await runInputJob(c, {
      config,
      gpu,
      job,
      publicParam: (param) => publicAddonParam(publicImageParam(param, { init_image: 'image_url' }), OPENAI_ADDON_STYLE),
      style: 'img2img',
      request: { ...request, image_url: describeImageUrl(request.image_url, source) },
      inputs,
      responseFormat: request.response_format,
      linkTtlSeconds,
      now,
      metadata: { sampler_name: request.sampler_name ?? sampling.resolved.sampler, comfy_scheduler: request.scheduler ?? sampling.resolved.scheduler },
    });
    const parameters: Img2ImgParameters = {
      model: model.id,
      mode: source ? 'img2img' : 'txt2img',
      seed: job.seed,
      seeds: run.data.map((item) => item.seed),
      steps: sampling.steps,
      batch_size: request.batch_size,
      width: request.width,
      height: request.height,
      // The canonical ids of a per-model default are ComfyUI's own names (euler, simple: test/shared/model-defaults.test.ts).
      sampler_name: request.sampler_name ?? (modelDefaults(model) ? sampling.resolved.sampler : IMG2IMG_DEFAULTS.sampler_name),
      scheduler: request.scheduler ?? (modelDefaults(model) ? sampling.resolved.scheduler : IMG2IMG_DEFAULTS.scheduler),
      cfg: sampling.cfg_scale,
      denoise_strength: denoiseStrength,
      prompt: request.prompt,
      negative_prompt: request.negative_prompt,
      image_url: describeImageUrl(request.image_url, source),
    };
    const body: Img2ImgResponse = { created: run.created, data: run.data, parameters, usage: run.usage, receipt: run.receipt };
    return c.json(body, 200);
  });
  return routes;
}

/**
 * The GenerationJob of a ComfyUI-style request: comfyui sampler/scheduler names, cfg → cfg_scale,
 * denoise_strength → strength with strength_schedule 'steps' (ComfyUI: exactly `steps` steps run),
 * no image → txt2img.
 * @throws ApiError 400 naming `model` (capability), `width` (over max_pixels), `sampler_name`/`scheduler`, `seed`.
 */
export function buildComfyJob(
  request: Img2ImgRequest,
  model: BackendModel,
  source: InputImage | null,
  ids: { taskId: string; tenant: string },
): GenerationJobInput {
  requireCapability(model, source ? 'img2img' : 'txt2img');
  const size = resolveOutputSize(model, { width: request.width, height: request.height }, source, 'width');
  const sampling = resolveComfySampling(request, model);
  const seed = resolveSeed(request.seed, request.batch_size, undefined, 'seed', 'batch_size');
  const job: GenerationJobInput = {
    id: ids.taskId,
    tenant: ids.tenant,
    model: model.id,
    mode: source ? 'img2img' : 'txt2img',
    prompt: request.prompt,
    negative_prompt: request.negative_prompt,
    width: size.width,
    height: size.height,
    batch_size: request.batch_size,
    seed,
    steps: sampling.steps,
    ...samplerJobFields(sampling.resolved),
    cfg_scale: sampling.cfg_scale,
    output: { format: request.output_format, quality: 90 },
    preview: 'none',
  };
  if (sampling.guidance !== undefined) job.guidance = sampling.guidance;
  if (source) {
    job.init_image = encodeBase64(source.bytes);
    job.strength = request.denoise_strength ?? IMG2IMG_DEFAULTS.denoise_strength;
    job.strength_schedule = 'steps';
  }
  return job;
}

/**
 * Sampling of a ComfyUI-style request: steps / cfg / sampler_name / scheduler as given, else the model's per-model
 * default (shared/src/model-defaults.ts), else the seed document's (IMG2IMG_DEFAULTS).
 * @throws ApiError 400 naming `sampler_name` / `scheduler` for an unknown name.
 */
export function resolveComfySampling(request: Img2ImgRequest, model: BackendModel): ResolvedSampling {
  return resolveSampling(
    'comfyui',
    model,
    { sampler: request.sampler_name, scheduler: request.scheduler, steps: request.steps, cfg_scale: request.cfg },
    { steps: IMG2IMG_DEFAULTS.steps, cfg_scale: IMG2IMG_DEFAULTS.cfg, params: { steps: 'steps', cfg_scale: 'cfg', sampler: 'sampler_name' } },
  );
}

/** The image_url echoed in `parameters`: URLs as given, inline images summarised (never echoed back). */
function describeImageUrl(value: string, source: InputImage | null): string {
  if (!source) return '';
  if (source.source === 'url') return value.trim();
  return `${source.source === 'data_url' ? 'data:' : 'base64:'}${source.mimeType} (${source.bytes.length} bytes)`;
}
