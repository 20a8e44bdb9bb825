import { SeedSchema } from '@image-api/shared/seed';
import { z } from 'zod';
import { ErrorBodySchema } from '@image-api/shared/errors';
import { GenerationParamsSchema } from '@image-api/shared/generation-job';
import { ImageGenerationRequestSchema, ImagesResponseSchema, ImageUsageSchema } from '@image-api/shared/api/openai-images';
import { PublicModelListSchema } from '@image-api/shared/api/models';
import {
  AsyncImg2ImgBodySchema,
  AsyncInpaintingBodySchema,
  AsyncModelListSchema,
  AsyncSubmitResponseSchema,
  AsyncTaskResultSchema,
  AsyncTxt2ImgBodySchema,
} from '@image-api/shared/api/async-tasks';
import { ImageEditRequestSchema, ImageVariationRequestSchema } from '@image-api/shared/api/image-edits';
import { Img2ImgRequestSchema, Img2ImgResponseSchema } from '@image-api/shared/api/img2img';
import { DEFAULT_LINK_TTL_MAX_SECONDS, DEFAULT_LINK_TTL_SECONDS, LINK_TTL_FIELD, MIN_LINK_TTL_SECONDS } from '../lib/edge-config';
import { jsonSchemaOf, withProperties, type JsonSchema } from './json-schema';

/** The OpenAPI version the document declares (JSON Schema draft 2020-12 dialect). */
export const OPENAPI_VERSION = '3.1.0';

/** Docs-only schema of GET /v1/tasks/:id (edge/src/tasks/task-json.ts `TaskJson`; times are unix seconds). */
const TaskJsonSchema = z.object({
  id: z.string(),
  object: z.literal('task'),
  style: z.string().describe('openai.generations | openai.edits | openai.variations | img2img | async.txt2img | async.img2img | async.inpainting'),
  status: z.enum(['QUEUED', 'PROCESSING', 'SUCCEED', 'FAILED', 'CANCELLED']),
  progress_percent: z.number().int().min(0).max(100),
  eta_seconds: z.number().nullable(),
  reason: z.string().nullable(),
  error: ErrorBodySchema.shape.error.nullable(),
  attempts: z.number().int(),
  created_at: z.number().int(),
  updated_at: z.number().int(),
  data: z
    .array(z.object({ url: z.string(), expires_at: z.number().int(), seed: SeedSchema, index: z.number().int(), mime_type: z.string() }))
    .nullable(),
  receipt: GenerationParamsSchema.nullable(),
  usage: ImageUsageSchema.nullable(),
});

/** Docs-only schemas of the public streaming events (README, "Streaming"): OpenAI's, plus `progress`. */
function streamEventSchemas(kind: 'image_generation' | 'image_edit', prefix: string) {
  const common = {
    background: z.enum(['transparent', 'opaque']).describe('"transparent" on completed events of a background "transparent" request; partial images are always opaque.'),
    quality: z.enum(['low', 'medium', 'high']).optional(),
    size: z.string().describe('"WxH" of the output.'),
    created_at: z.number().int(),
  };
  return {
    [`${prefix}ProgressEvent`]: z.object({
      type: z.literal(`${kind}.progress`),
      step: z.number().int(),
      total: z.number().int(),
      eta_seconds: z.number().nullable(),
      queue_position: z.number().int().nullable(),
    }),
    [`${prefix}PartialImageEvent`]: z.object({
      type: z.literal(`${kind}.partial_image`),
      b64_json: z.string().describe('A JPEG preview of the output size.'),
      partial_image_index: z.number().int(),
      output_format: z.enum(['png', 'jpeg']),
      ...common,
    }),
    [`${prefix}CompletedEvent`]: z.object({
      type: z.literal(`${kind}.completed`),
      b64_json: z.string(),
      url: z.string().optional().describe('A signed link to the stored image (response_format url, the default).'),
      seed: SeedSchema,
      output_format: z.string(),
      ...common,
      usage: ImageUsageSchema,
      receipt: GenerationParamsSchema,
      task_id: z.string(),
    }),
  };
}
const StreamEventSchemas = {
  ...streamEventSchemas('image_generation', 'ImageGeneration'),
  ...streamEventSchemas('image_edit', 'ImageEdit'),
  StreamErrorEvent: z.object({ type: z.literal('error'), error: ErrorBodySchema.shape.error }),
};

/**
 * The `text/event-stream` media type of a streaming answer. OpenAPI 3.1 has no keyword for the schema of
 * each event (3.2's `itemSchema`), so the frames are a string and the event payloads are listed in the
 * description and, machine-readably, in the `x-sse-events` extension (event name → schema).
 */
function eventStream(description: string, events: Record<string, JsonSchema>): JsonSchema {
  return {
    'text/event-stream': {
      schema: { type: 'string', description: `Server-Sent Events. ${description}` },
      'x-sse-events': events,
    },
  };
}

/** The event stream of an OpenAI-style image answer: `<kind>.progress`, `.partial_image`, `.completed`, `error`. */
function imageEventStream(kind: 'image_generation' | 'image_edit'): JsonSchema {
  const prefix = kind === 'image_generation' ? 'ImageGeneration' : 'ImageEdit';
  return eventStream(
    `Events \`${kind}.progress\` (${prefix}ProgressEvent), \`${kind}.partial_image\` (${prefix}PartialImageEvent), one \`${kind}.completed\` per image (${prefix}CompletedEvent), or \`error\` (StreamErrorEvent); each \`data:\` is the JSON payload.`,
    {
      [`${kind}.progress`]: ref(`${prefix}ProgressEvent`),
      [`${kind}.partial_image`]: ref(`${prefix}PartialImageEvent`),
      [`${kind}.completed`]: ref(`${prefix}CompletedEvent`),
      error: ref('StreamErrorEvent'),
    },
  );
}

/** One documented operation. */
interface OperationSpec {
  method: 'get' | 'post' | 'delete';
  path: string;
  operationId: string;
  tag: string;
  summary: string;
  description: string;
  /** Needs `Authorization: Bearer <key>` (default true). */
  auth?: boolean;
  parameters?: JsonSchema[];
  requestBody?: JsonSchema;
  /** Status → response object. */
  responses: Record<string, JsonSchema>;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: JsonSchema) => ({ 'application/json': { schema } });
const errors = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [String(s), { $ref: `#/components/responses/Error${s}` }]));
const pathParam = (name: string, description: string) => ({ name, in: 'path', required: true, description, schema: { type: 'string' } });
const queryParam = (name: string, description: string, schema: JsonSchema = { type: 'string' }, required = false) => ({
  name,
  in: 'query',
  required,
  description,
  schema,
});
const IDEMPOTENCY = { $ref: '#/components/parameters/IdempotencyKey' };
const LINK_TTL_QUERY = { $ref: '#/components/parameters/LinkTtlSeconds' };

/** Headers every generation response carries. */
const GENERATION_HEADERS = {
  'x-task-id': { $ref: '#/components/headers/XTaskId' },
  'x-ratelimit-limit': { $ref: '#/components/headers/XRateLimitLimit' },
  'x-ratelimit-remaining': { $ref: '#/components/headers/XRateLimitRemaining' },
  'x-ratelimit-reset': { $ref: '#/components/headers/XRateLimitReset' },
  'idempotent-replayed': { $ref: '#/components/headers/IdempotentReplayed' },
};

const GENERATION_ERRORS = errors(400, 401, 404, 409, 413, 415, 422, 429, 500, 502, 503);

const LINK_TTL_PROPERTY: JsonSchema = {
  type: 'integer',
  minimum: MIN_LINK_TTL_SECONDS,
  description: `Lifetime of the returned signed links in seconds (default ${DEFAULT_LINK_TTL_SECONDS}; at most LINK_TTL_MAX_SECONDS, ${DEFAULT_LINK_TTL_MAX_SECONDS} by default).`,
};

/** multipart/form-data schema of the edits/variations routes: the zod fields plus the image files. */
function multipartImageForm(schema: z.ZodType, withMask: boolean): JsonSchema {
  const file = { type: 'string', contentMediaType: 'application/octet-stream', description: 'PNG, JPEG or WebP file' };
  const files: Record<string, JsonSchema> = {
    image: { ...file, description: 'Source image (PNG/JPEG/WebP), also as `image[]`. One image is edited; a second one is a 400 naming `image[1]`.' },
  };
  if (withMask) {
    files.mask = {
      ...file,
      description: 'Optional PNG the same size as the image: transparent pixels (mask_mode=alpha) or white pixels (mask_mode=white) are repainted. No mask = the whole image is repainted.',
    };
  }
  return withProperties(jsonSchemaOf(schema, 'input'), { ...files, [LINK_TTL_FIELD]: LINK_TTL_PROPERTY }, ['image']);
}

const ASYNC_BODIES = { txt2img: AsyncTxt2ImgBodySchema, img2img: AsyncImg2ImgBodySchema, inpainting: AsyncInpaintingBodySchema } as const;

/** The fields of an async body's `request` that have no default (what a client must send), in schema order. */
export function asyncRequiredFields(kind: keyof typeof ASYNC_BODIES): string[] {
  const body = jsonSchemaOf(ASYNC_BODIES[kind], 'input') as { properties: { request: { required?: string[] } } };
  return body.properties.request.required ?? [];
}

/** Every public operation of the edge (app.ts mounts exactly these). */
function operations(): OperationSpec[] {
  return [
    {
      method: 'post',
      path: '/v1/images/generations',
      operationId: 'createImage',
      tag: 'OpenAI images',
      summary: 'Generate images from a prompt',
      description:
        'OpenAI-compatible text-to-image with the GPUStack advanced fields (sample_method, schedule_method, sampling_steps, cfg_scale, guidance, seed, negative_prompt, preview). ' +
        'With `"stream": true` the answer is Server-Sent Events: `image_generation.progress`, `image_generation.partial_image` (previews), then one `image_generation.completed` per image, or `error`. ' +
        '`image` (URL or base64) turns the request into img2img. Signed links live `link_ttl_seconds` (default 1 hour).',
      parameters: [IDEMPOTENCY],
      requestBody: { required: true, content: json(ref('ImageGenerationRequest')) },
      responses: {
        '200': {
          description: 'The generated images (JSON), or the event stream when `stream` is true.',
          headers: GENERATION_HEADERS,
          content: { ...json(ref('ImagesResponse')), ...imageEventStream('image_generation') },
        },
        ...GENERATION_ERRORS,
      },
    },
    {
      method: 'post',
      path: '/api/images/generations',
      operationId: 'createImageAlias',
      tag: 'OpenAI images',
      summary: 'Generate images (alias of /v1/images/generations)',
      description: 'The same operation under the /api prefix some clients use.',
      parameters: [IDEMPOTENCY],
      requestBody: { required: true, content: json(ref('ImageGenerationRequest')) },
      responses: {
        '200': { description: 'As /v1/images/generations.', headers: GENERATION_HEADERS, content: { ...json(ref('ImagesResponse')), ...imageEventStream('image_generation') } },
        ...GENERATION_ERRORS,
      },
    },
    {
      method: 'post',
      path: '/v1/images/edits',
      operationId: 'createImageEdit',
      tag: 'OpenAI images',
      summary: 'Edit an image (inpaint with a mask, or repaint all of it)',
      description:
        'multipart/form-data as OpenAI sends it (or JSON with `image`/`mask` as URL or base64, or `images: [{image_url}]`). One image is edited: a second (`image[1]`, `images[1]`) is a 400 naming it. A mask of another size, or one that covers nothing, is a 400 naming `mask`. ' +
        'With `"stream": true` the answer is Server-Sent Events named `image_edit.*`.',
      parameters: [IDEMPOTENCY],
      requestBody: {
        required: true,
        content: {
          'multipart/form-data': { schema: multipartImageForm(ImageEditRequestSchema, true) },
          'application/json': { schema: withProperties(jsonSchemaOf(ImageEditRequestSchema, 'input'), { image: { type: 'string' }, mask: { type: 'string' }, [LINK_TTL_FIELD]: LINK_TTL_PROPERTY }, ['image']) },
        },
      },
      responses: {
        '200': {
          description: 'The edited images (JSON), or the event stream (image_edit.*) when `stream` is true.',
          headers: GENERATION_HEADERS,
          content: { ...json(ref('ImagesResponse')), ...imageEventStream('image_edit') },
        },
        ...GENERATION_ERRORS,
      },
    },
    {
      method: 'post',
      path: '/v1/images/variations',
      operationId: 'createImageVariation',
      tag: 'OpenAI images',
      summary: 'Variations of an image',
      description: 'img2img of the image with an optional prompt (default strength 0.6).',
      parameters: [IDEMPOTENCY],
      requestBody: {
        required: true,
        content: {
          'multipart/form-data': { schema: multipartImageForm(ImageVariationRequestSchema, false) },
          'application/json': { schema: withProperties(jsonSchemaOf(ImageVariationRequestSchema, 'input'), { image: { type: 'string' }, [LINK_TTL_FIELD]: LINK_TTL_PROPERTY }, ['image']) },
        },
      },
      responses: {
        '200': {
          description: 'The variations (JSON), or the event stream (image_generation.*) when `stream` is true.',
          headers: GENERATION_HEADERS,
          content: { ...json(ref('ImagesResponse')), ...imageEventStream('image_generation') },
        },
        ...GENERATION_ERRORS,
      },
    },
    {
      method: 'get',
      path: '/v1/models',
      operationId: 'listModels',
      tag: 'Models',
      summary: 'List the served models',
      description: "OpenAI's list shape; each model adds kind, capabilities, native_size [w, h] and max_pixels.",
      responses: { '200': { description: 'The models.', content: json(ref('ModelList')) }, ...errors(401, 502, 503) },
    },
    {
      method: 'post',
      path: '/v1/img2img',
      operationId: 'img2img',
      tag: 'Image to image (ComfyUI names)',
      summary: 'Image to image with ComfyUI field names and defaults',
      description: 'seed 0 is a real seed; steps 20, cfg 8, denoise_strength 0.75, sampler euler, scheduler normal, 512×512. An empty image_url means text-to-image.',
      parameters: [IDEMPOTENCY],
      requestBody: { required: true, content: json(ref('Img2ImgRequest')) },
      responses: { '200': { description: 'The images and the parameters actually used.', headers: GENERATION_HEADERS, content: json(ref('Img2ImgResponse')) }, ...GENERATION_ERRORS },
    },
    {
      method: 'get',
      path: '/v1/tasks',
      operationId: 'listTasks',
      tag: 'Tasks',
      summary: "List this key's recent tasks",
      description: 'Newest first.',
      parameters: [queryParam('limit', 'How many (1..100).', { type: 'integer', minimum: 1, maximum: 100 }), LINK_TTL_QUERY],
      responses: {
        '200': { description: 'The tasks.', content: json({ type: 'object', properties: { object: { const: 'list' }, data: { type: 'array', items: ref('Task') } }, required: ['object', 'data'] }) },
        ...errors(400, 401),
      },
    },
    {
      method: 'get',
      path: '/v1/tasks/{id}',
      operationId: 'getTask',
      tag: 'Tasks',
      summary: 'A task (any API style) by id',
      description: "Every generation gets a task id (the `x-task-id` header of sync calls). Another key's task is a 404.",
      parameters: [pathParam('id', 'Task id.'), LINK_TTL_QUERY],
      responses: { '200': { description: 'The task.', content: json(ref('Task')) }, ...errors(401, 404) },
    },
    {
      method: 'delete',
      path: '/v1/tasks/{id}',
      operationId: 'cancelTask',
      tag: 'Tasks',
      summary: 'Cancel a task',
      description: 'Works for every API style; a task that has already ended is a 409.',
      parameters: [pathParam('id', 'Task id.')],
      responses: { '200': { description: 'The cancelled task.', content: json(ref('Task')) }, ...errors(401, 404, 409) },
    },
    {
      method: 'get',
      path: '/v1/tasks/{id}/events',
      operationId: 'taskEvents',
      tag: 'Tasks',
      summary: "Follow a task's progress (resumable SSE)",
      description:
        'Events task.queued {position}, task.progress {step, total, eta_seconds}, task.preview {b64, mime_type}, then task.completed {data, receipt} or task.failed {error}. Send Last-Event-ID to resume; after the final event the answer is 204.',
      parameters: [pathParam('id', 'Task id.'), { name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string' }, description: 'Id of the last event received.' }, LINK_TTL_QUERY],
      responses: {
        '200': {
          description: 'The event stream.',
          content: eventStream('Events task.queued, task.started, task.progress, task.preview, then task.completed (id "final") or task.failed; each `data:` is JSON.', {
            'task.queued': { type: 'object', properties: { position: { type: 'integer' } } },
            'task.progress': { type: 'object', properties: { step: { type: 'integer' }, total: { type: 'integer' }, eta_seconds: { type: ['number', 'null'] } } },
            'task.preview': { type: 'object', properties: { b64: { type: 'string' }, mime_type: { type: 'string' } } },
            'task.completed': ref('Task'),
            'task.failed': ref('Task'),
          }),
        },
        '204': { description: 'The task has ended and its final event was already received.' },
        ...errors(401, 404),
      },
    },
    ...(['txt2img', 'img2img', 'inpainting'] as const).map(
      (kind): OperationSpec => ({
        method: 'post',
        path: `/v3/async/${kind}`,
        operationId: `async${kind[0].toUpperCase()}${kind.slice(1)}`,
        tag: 'Async tasks (Novita style)',
        summary: `Submit an async ${kind} task`,
        description:
          `Required in \`request\`: ${asyncRequiredFields(kind).join(', ')}${kind === 'txt2img' ? '' : kind === 'img2img' ? '; and one of image_base64 / image_url' : '; one of image_base64 / image_url and one of mask_image_base64 / mask_image_url'}. ` +
          'Also required: steps, guidance_scale, sampler_name, except for models with per-model defaults (FLUX.1, SD 3.x: README "Per-model defaults"), which fill the ones left out. ' +
          'Answers `{task_id}` at once; poll GET /v3/async/task-result or receive the webhook (X-Webhook-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">). Options this deployment cannot serve are 400s naming the field; missing required fields are all named in one 400.',
        parameters: [IDEMPOTENCY],
        requestBody: { required: true, content: json(ref(`Async${kind[0].toUpperCase()}${kind.slice(1)}Body`)) },
        responses: { '200': { description: 'The task id.', content: json(ref('AsyncSubmitResponse')) }, ...GENERATION_ERRORS },
      }),
    ),
    {
      method: 'get',
      path: '/v3/async/task-result',
      operationId: 'asyncTaskResult',
      tag: 'Async tasks (Novita style)',
      summary: 'Status and images of an async task',
      description: "Statuses TASK_STATUS_QUEUED | PROCESSING | SUCCEED | FAILED; images as signed links valid image_url_ttl seconds. Another key's task is a 404.",
      parameters: [queryParam('task_id', 'The id from the submit call.', { type: 'string' }, true), LINK_TTL_QUERY],
      responses: { '200': { description: 'The task.', content: json(ref('AsyncTaskResult')) }, ...errors(400, 401, 404) },
    },
    {
      method: 'get',
      path: '/v3/model',
      operationId: 'asyncModels',
      tag: 'Async tasks (Novita style)',
      summary: 'Models by kind',
      description: '`filter.types`: checkpoint, lora, vae, textualinversion, matting, facerestore, upscaler (comma-separated; default all).',
      parameters: [queryParam('filter.types', 'Kinds to list, comma-separated.')],
      responses: { '200': { description: 'The models.', content: json(ref('AsyncModelList')) }, ...errors(400, 401, 502) },
    },
    {
      method: 'get',
      path: '/v1/files/{key}',
      operationId: 'getFile',
      tag: 'Files',
      summary: 'Download an output through a signed link',
      description:
        'The links in `url`/`image_url` fields. No Bearer key: the HMAC-SHA256 signature over the object key (which begins with the tenant) and the expiry is the credential. A tampered, expired or other-tenant link is a 403.',
      auth: false,
      parameters: [
        { ...pathParam('key', 'R2 object key `<tenant>/<yyyy>/<mm>/<dd>/<task>/<i>.<ext>` (it contains slashes; each segment percent-encoded).'), schema: { type: 'string' } },
        queryParam('exp', 'Expiry, unix seconds.', { type: 'string' }, true),
        queryParam('sig', 'Hex HMAC-SHA256 signature.', { type: 'string' }, true),
      ],
      responses: {
        '200': { description: 'The image.', content: { 'image/png': { schema: { type: 'string', contentMediaType: 'image/png' } }, 'image/jpeg': {}, 'image/webp': {} } },
        ...errors(403, 404),
      },
    },
    {
      method: 'get',
      path: '/healthz',
      operationId: 'health',
      tag: 'Service',
      summary: 'Liveness',
      description: 'Always `{ok: true}` while the Worker runs.',
      auth: false,
      responses: { '200': { description: 'Alive.', content: json({ type: 'object', properties: { ok: { const: true } }, required: ['ok'] }) } },
    },
    {
      method: 'get',
      path: '/openapi.json',
      operationId: 'openapi',
      tag: 'Service',
      summary: 'This document',
      description: 'OpenAPI 3.1, generated from the zod schemas the routes validate with.',
      auth: false,
      responses: { '200': { description: 'The document.', content: json({ type: 'object' }) } },
    },
    ...(['/docs', '/', '/playground'] as const).map(
      (path): OperationSpec => ({
        method: 'get',
        path,
        operationId: path === '/docs' ? 'docsPage' : path === '/' ? 'playgroundRoot' : 'playgroundPage',
        tag: 'Web pages',
        summary: path === '/docs' ? 'API reference page (renders this document)' : 'Web playground',
        description: path === '/docs' ? 'HTML; its script and style are served under /docs/.' : 'HTML page that calls this API with a key you paste.',
        auth: false,
        responses: { '200': { description: 'HTML.', content: { 'text/html': { schema: { type: 'string' } } } } },
      }),
    ),
    {
      method: 'get',
      path: '/docs/{file}',
      operationId: 'docsAsset',
      tag: 'Web pages',
      summary: 'Script and style of the reference page',
      description: 'docs.js, docs.css.',
      auth: false,
      parameters: [pathParam('file', 'Asset name.')],
      responses: { '200': { description: 'The asset.', content: { 'text/javascript': {}, 'text/css': {} } }, ...errors(404) },
    },
    {
      method: 'get',
      path: '/playground/{file}',
      operationId: 'playgroundAsset',
      tag: 'Web pages',
      summary: 'Scripts and style of the playground',
      description: 'The modules of the playground page.',
      auth: false,
      parameters: [pathParam('file', 'Asset name.')],
      responses: { '200': { description: 'The asset.', content: { 'text/javascript': {}, 'text/css': {} } }, ...errors(404) },
    },
  ];
}

/** components.schemas: every named schema, from the shared zod schemas (requests as input, responses as output). */
function componentSchemas(): Record<string, JsonSchema> {
  const withTtl = (schema: JsonSchema) => withProperties(schema, { [LINK_TTL_FIELD]: LINK_TTL_PROPERTY });
  const asyncBody = (schema: z.ZodType) => {
    const body = jsonSchemaOf(schema, 'input');
    const properties = body.properties as Record<string, JsonSchema>;
    return { ...body, properties: { ...properties, extra: withTtl(properties.extra) } };
  };
  const schemas: Record<string, JsonSchema> = {
    ErrorBody: jsonSchemaOf(ErrorBodySchema, 'output'),
    ImageGenerationRequest: withTtl(jsonSchemaOf(ImageGenerationRequestSchema, 'input')),
    ImagesResponse: jsonSchemaOf(ImagesResponseSchema, 'output'),
    ModelList: jsonSchemaOf(PublicModelListSchema, 'output'),
    Img2ImgRequest: withTtl(jsonSchemaOf(Img2ImgRequestSchema, 'input')),
    Img2ImgResponse: jsonSchemaOf(Img2ImgResponseSchema, 'output'),
    Task: jsonSchemaOf(TaskJsonSchema, 'output'),
    AsyncTxt2imgBody: asyncBody(AsyncTxt2ImgBodySchema),
    AsyncImg2imgBody: asyncBody(AsyncImg2ImgBodySchema),
    AsyncInpaintingBody: asyncBody(AsyncInpaintingBodySchema),
    AsyncSubmitResponse: jsonSchemaOf(AsyncSubmitResponseSchema, 'output'),
    AsyncTaskResult: jsonSchemaOf(AsyncTaskResultSchema, 'output'),
    AsyncModelList: jsonSchemaOf(AsyncModelListSchema, 'output'),
  };
  for (const [name, schema] of Object.entries(StreamEventSchemas)) schemas[name] = jsonSchemaOf(schema, 'output');
  // The size field is a "WxH" string (or "auto"); say so, since the zod transform hides the pattern.
  for (const name of ['ImageGenerationRequest']) {
    const properties = schemas[name].properties as Record<string, JsonSchema>;
    properties.size = { type: 'string', pattern: '^(auto|\\d{2,4}x\\d{2,4})$', description: '"WxH" in pixels, both multiples of 8 in 64..4096, or "auto" (the model\'s native size, also when omitted).' };
  }
  return schemas;
}

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'Invalid request: `param` names the field.',
  401: 'Missing, unknown or revoked API key.',
  403: 'Link signature invalid or expired.',
  404: 'Not found (model_not_found, or a task/file this key cannot see).',
  409: 'Conflict: idempotency_key_in_use (retry after Retry-After), or a task that has already ended.',
  413: 'Request body too large.',
  415: 'Image type not PNG, JPEG or WebP.',
  422: 'idempotency_key_reused: the Idempotency-Key was used for a different request.',
  429: 'Rate limited (requests per minute, concurrency, images per day, compute units per minute); see Retry-After and X-RateLimit-*.',
  500: 'Server error.',
  502: 'The GPU service could not be reached or failed.',
  503: 'Every GPU backend is busy (queue_full); see Retry-After.',
};

/**
 * The OpenAPI 3.1 document of the public edge API: every mounted path with its request and
 * response schemas (generated with zod's toJSONSchema from shared/src/api/**), the shared error
 * body, bearer auth, and the Idempotency-Key / link_ttl_seconds / rate-limit headers. Pure: the
 * same document every call (the caller may cache it).
 * @param serverUrl the public origin to list under `servers` (default: relative "/").
 */
export function buildOpenApiDocument(serverUrl = '/'): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const tags: string[] = [];
  for (const op of operations()) {
    if (!tags.includes(op.tag)) tags.push(op.tag);
    const operation: Record<string, unknown> = {
      operationId: op.operationId,
      tags: [op.tag],
      summary: op.summary,
      description: op.description,
      security: op.auth === false ? [] : [{ bearerAuth: [] }],
      responses: op.responses,
    };
    if (op.parameters) operation.parameters = op.parameters;
    if (op.requestBody) operation.requestBody = op.requestBody;
    paths[op.path] = { ...paths[op.path], [op.method]: operation };
  }
  const errorResponses = Object.fromEntries(
    Object.entries(ERROR_DESCRIPTIONS).map(([status, description]) => [
      `Error${status}`,
      {
        description,
        ...(status === '429' || status === '503' || status === '409' ? { headers: { 'retry-after': { $ref: '#/components/headers/RetryAfter' } } } : {}),
        content: json(ref('ErrorBody')),
      },
    ]),
  );
  return {
    openapi: OPENAPI_VERSION,
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    info: {
      title: 'Image generation API',
      version: '1.0.0',
      description:
        'Three API styles over one job model: OpenAI-compatible images, ComfyUI-named img2img, and Novita-style async tasks. ' +
        'Authenticate with `Authorization: Bearer <api key>`. Every error has the body `{"error": {code, message, param, type}}`.',
    },
    servers: [{ url: serverUrl }],
    security: [{ bearerAuth: [] }],
    tags: tags.map((name) => ({ name })),
    paths,
    components: {
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'An API key from `npm run keys -- create`.' } },
      schemas: componentSchemas(),
      responses: errorResponses,
      parameters: {
        IdempotencyKey: {
          name: 'Idempotency-Key',
          in: 'header',
          required: false,
          description:
            'Up to 255 visible ASCII characters. A retried POST with the same key (and the same request) gets the first response again (Idempotent-Replayed: true) for 24 h instead of generating again; 409 while the first is still running; 422 for a different request.',
          schema: { type: 'string', maxLength: 255 },
        },
        LinkTtlSeconds: {
          name: LINK_TTL_FIELD,
          in: 'query',
          required: false,
          description: LINK_TTL_PROPERTY.description,
          schema: LINK_TTL_PROPERTY,
        },
      },
      headers: {
        XTaskId: { description: 'The task id of this generation (GET /v1/tasks/{id}).', schema: { type: 'string' } },
        XRateLimitLimit: { description: 'Requests per minute allowed for this key (absent without a limit).', schema: { type: 'integer' } },
        XRateLimitRemaining: { description: 'Requests left in this minute.', schema: { type: 'integer' } },
        XRateLimitReset: { description: 'Seconds until the minute window resets.', schema: { type: 'integer' } },
        RetryAfter: { description: 'Seconds to wait before retrying.', schema: { type: 'integer' } },
        IdempotentReplayed: { description: '"true" when this is the stored response of an earlier request with the same Idempotency-Key.', schema: { type: 'string' } },
      },
    },
  };
}
