import { hasScope, MODELS_DOWNLOAD_SCOPE } from '@image-api/shared/api/api-key';
import type { Context } from 'hono';
import { Hono } from 'hono';
import {
  ImageEditRequestSchema,
  ImageVariationRequestSchema,
  type ImageEditRequest,
  type ImageVariationRequest,
} from '@image-api/shared/api/image-edits';
import { HIGH_FIDELITY_STRENGTH } from '@image-api/shared/api/image-edits';
import { DEFAULT_STRENGTH, PREVIEW_MODES, type ImagesResponse } from '@image-api/shared/api/openai-images';
import { checkOpenAiOutputOptions, openAiBackgroundJobFields, openAiResponseFields, responseQuality } from '../inputs/openai-options';
import { OPENAI_ADDON_STYLE, publicAddonParam, requestAddonJobFields } from '../addons/request-addons';
import type { AppEnv } from '../env';
import type { ModelCatalog } from '../gpu/model-catalog';
import { invalidParameter, unsupportedParameter } from '../lib/api-error';
import { readEdgeConfig, resolveLinkTtl } from '../lib/edge-config';
import { buildOpenAiImageJob } from '../inputs/image-job';
import type { TaskInput } from '../inputs/input-objects';
import { checkMaskHeader, checkMaskPixels } from '../inputs/mask-check';
import { publicImageParam } from '../inputs/input-errors';
import { readImageRequest } from '../inputs/read-image-request';
import { resolveImageInput, type InputImage } from '../inputs/resolve-image-input';
import { runInputJob, streamInputJob, type RunInputJobOptions } from '../inputs/run-input-job';
import { allowHttpImageUrls } from '../inputs/url-guard';
import { validationHook } from '../middleware/validation-hook';

/** Dependencies shared by the route factories (see app.ts). */
export interface RouteOptions {
  catalog: ModelCatalog;
  /** Clock in unix milliseconds (tests may pin it). */
  now?: () => number;
}

type EditKind = 'edit' | 'variation';

/**
 * POST /v1/images/edits and POST /v1/images/variations (OpenAI's images API, README "Public API").
 *
 * Body: multipart/form-data as OpenAI defines it (or JSON with the same names; images then as
 * https/data URLs or base64, or OpenAI's `images: [{image_url}]`), capped at 20 MiB (413). `image` is a
 * file; `image[]` may carry up to 16, but a Stable Diffusion pipeline edits one image, so a second one is
 * a 400 naming it (`image[1]` / `images[1].image_url`). Every image is checked by magic bytes (PNG/JPEG/WebP, else 415) and by the
 * pixel count in its header before anything decodes it.
 *
 * Edits: `mask` (optional) is a PNG whose TRANSPARENT pixels mark the area to repaint (OpenAI);
 * `mask_mode=white` takes white = repaint instead. A mask of another size than the image, a mask
 * without transparency in alpha mode, or one that covers nothing is a 400 naming `mask` — never a
 * silent whole-image repaint (the size check before the rate limiter, the pixel scan after it). No mask: the whole image is repainted guided by it (img2img), with
 * `strength` (default 0.75, GPUStack's) as the denoise strength.
 * Variations: img2img of the image; `prompt` optional (default ''), `strength` default 0.6.
 *
 * `size` default: the source image's size, scaled down to the model's max_pixels (aspect kept) and
 * rounded down to multiples of 8. The response is the generations shape `{created, data, usage,
 * receipt}` with `x-task-id` (a task of style openai.edits / openai.variations, readable at
 * /v1/tasks/:id); inputs are stored in R2 beside the outputs (`.../<task>/input-<n>.<ext>`).
 */
export function openAiEditRoutes(options: RouteOptions): Hono<AppEnv> {
  const now = options.now ?? (() => Date.now());
  const routes = new Hono<AppEnv>();
  routes.post('/edits', (c) => handleImageRequest(c, 'edit', options.catalog, now));
  routes.post('/variations', (c) => handleImageRequest(c, 'variation', options.catalog, now));
  return routes;
}

async function handleImageRequest(c: Context<AppEnv>, kind: EditKind, catalog: ModelCatalog, now: () => number): Promise<Response> {
  const config = readEdgeConfig(c.env);
  const apiKey = c.get('apiKey');
  const body = await readImageRequest(c.req.raw);

  const parsed = (kind === 'edit' ? ImageEditRequestSchema : ImageVariationRequestSchema).safeParse(body.fields);
  validationHook(parsed, c);
  const request = parsed.data as ImageEditRequest | ImageVariationRequest;
  checkOpenAiOutputOptions(request);
  const linkTtlSeconds = resolveLinkTtl(request.link_ttl_seconds, config);
  if (body.image === undefined) throw invalidParameter('image', 'image is required (a PNG, JPEG or WebP file).', 'missing_parameter');
  if (body.images.length > 1) {
    // A Stable Diffusion pipeline edits one image: it has no way to combine several (no reference-image
    // conditioning), and quietly dropping the others would hide that.
    throw unsupportedParameter(
      body.images[1].param,
      `This deployment edits one image per request (the first; a mask applies to it). ${body.images[1].param} and any later image cannot be used: send each image in its own request.`,
    );
  }
  if (kind === 'variation' && body.mask !== undefined) {
    throw unsupportedParameter('mask', 'Variations take no mask; use /v1/images/edits to repaint part of an image.');
  }

  const allowHttp = allowHttpImageUrls(c.env);
  const image = await resolveImageInput(body.image, { param: body.images[0].param, allowHttp });
  const inputs: TaskInput[] = [{ image, role: 'image' }];
  const maskMode = kind === 'edit' ? (request as ImageEditRequest).mask_mode : 'alpha';
  if (body.mask !== undefined) {
    const mask = await resolveImageInput(body.mask, { param: 'mask', allowHttp });
    checkMaskHeader(image, mask, maskMode);
    inputs.push({ image: mask, role: 'mask' });
  }

  const gpu = catalog.backendPool(config);
  const model = await catalog.findCheckpoint(gpu, gpu.key, request.model ?? config.defaultModel);
  const taskId = crypto.randomUUID();
  const job = buildOpenAiImageJob({
    taskId,
    tenant: apiKey.tenant,
    model,
    source: image,
    mask: inputs[1]?.image,
    mask_mode: maskMode,
    prompt: request.prompt,
    negative_prompt: request.negative_prompt,
    n: request.n,
    size: request.size,
    strength: strengthOf(kind, request),
    sample_method: request.sample_method,
    schedule_method: request.schedule_method,
    sampling_steps: request.sampling_steps,
    quality: request.quality,
    cfg_scale: request.cfg_scale,
    guidance: request.guidance,
    seed: request.seed,
    output_format: request.output_format,
    output_compression: request.output_compression,
    preview: request.stream && request.partial_images !== 0 ? PREVIEW_MODES[request.preview] : 'none',
  });
  job.download_any_repo = hasScope(apiKey, MODELS_DOWNLOAD_SCOPE);

  Object.assign(job, await requestAddonJobFields(catalog, gpu, request, request.prompt, OPENAI_ADDON_STYLE));
  Object.assign(job, await openAiBackgroundJobFields(request, catalog, gpu));

  const runOptions: RunInputJobOptions = {
    config,
    gpu,
    job,
    publicParam: (param) => publicAddonParam(publicImageParam(param, { init_image: body.images[0].param, mask: 'mask' }), OPENAI_ADDON_STYLE),
    style: kind === 'edit' ? 'openai.edits' : 'openai.variations',
    request: { ...request, image: describeInput(image), mask: inputs[1] ? describeInput(inputs[1].image) : undefined, images_sent: body.imageCount },
    inputs,
    responseFormat: request.response_format,
    linkTtlSeconds,
    now,
    // The mask's pixel scan costs CPU: only once the rate limiter admitted the request (issue 10 item 5).
    admittedChecks: inputs[1] ? () => checkMaskPixels(inputs[1].image, maskMode) : undefined,
    metadata: {
      user: request.user,
      quality: request.quality,
      sample_method: request.sample_method,
      schedule_method: request.schedule_method,
      mask_mode: job.mask ? maskMode : undefined,
      input_fidelity: kind === 'edit' ? (request as ImageEditRequest).input_fidelity : undefined,
      background: request.background,
      images_sent: body.imageCount,
    },
  };
  if (request.stream) {
    return streamInputJob(c, {
      ...runOptions,
      kind: kind === 'edit' ? 'image_edit' : 'image_generation',
      quality: responseQuality(request.quality),
      outputFormat: request.output_format,
      partialImages: request.preview === 'none' ? 0 : (request.partial_images ?? null),
    });
  }
  const run = await runInputJob(c, runOptions);
  const response: ImagesResponse = {
    created: run.created,
    ...openAiResponseFields(request, run.receipt),
    data: run.data,
    usage: run.usage,
    receipt: run.receipt,
  };
  return c.json(response, 200);
}

/**
 * The denoise strength: the request's; else for edits 0.5 with input_fidelity "high" (keep more of the
 * input) and 0.75 otherwise; variations have their own default in the schema.
 */
function strengthOf(kind: EditKind, request: ImageEditRequest | ImageVariationRequest): number {
  if (kind === 'variation') return (request as ImageVariationRequest).strength;
  const edit = request as ImageEditRequest;
  return edit.strength ?? (edit.input_fidelity === 'high' ? HIGH_FIDELITY_STRENGTH : DEFAULT_STRENGTH);
}

/** How an input is recorded in the task row: its origin and size, never its bytes. */
function describeInput(image: InputImage): Record<string, string | number | undefined> {
  return { source: image.source, url: image.url, filename: image.filename, type: image.type, width: image.width, height: image.height, bytes: image.bytes.length };
}
