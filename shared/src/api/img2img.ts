import { z } from 'zod';
import { GenerationParamsSchema, OutputFormatSchema } from '../generation-job';
import { openAiAddonFields } from './addon-fields';
import { publicSeedSchema, SeedSchema } from '../seed';
import { DEFAULT_SAMPLER_NAME, DEFAULT_SCHEDULER_NAME } from '../sampler-names';
import { ImageDataSchema, ImageUsageSchema, MAX_IMAGES_PER_REQUEST, MAX_PROMPT_LENGTH, MAX_SAMPLING_STEPS } from './openai-images';
import { MAX_IMAGE_SIDE, MIN_IMAGE_SIDE, SIZE_MULTIPLE } from './size';

/**
 * POST /v1/img2img: ComfyUI-named fields with the defaults of the img2img seed (README "Public API",
 * seeds/img2img-api.md). An empty `image_url` (the default) makes it text-to-image.
 */

/** Defaults of the seed document, exactly. */
export const IMG2IMG_DEFAULTS = {
  seed: 0,
  steps: 20,
  batch_size: 1,
  width: 512,
  height: 512,
  sampler_name: DEFAULT_SAMPLER_NAME.comfyui,
  cfg: 8,
  denoise_strength: 0.75,
  scheduler: DEFAULT_SCHEDULER_NAME.comfyui,
  prompt: 'beautiful scenery nature glass bottle landscape, purple galaxy bottle',
  negative_prompt: 'text, watermark',
  image_url: '',
} as const;

const side = (name: string, fallback: number) =>
  z
    .number()
    .int()
    .min(MIN_IMAGE_SIDE)
    .max(MAX_IMAGE_SIDE)
    .multipleOf(SIZE_MULTIPLE, `${name} must be a multiple of ${SIZE_MULTIPLE}`)
    .default(fallback)
    .describe(`Output ${name} in pixels (multiple of ${SIZE_MULTIPLE}); width × height must be within the model's max_pixels.`);

/**
 * The request body (JSON). Unknown fields are dropped.
 * - seed: 0 is a real seed (not "random"); image i of the batch uses seed + i.
 * - width/height: default 512 even when the model's native size differs; checked against the model's
 *   max_pixels by the edge (never silently clamped).
 * - sampler_name / scheduler: ComfyUI names (shared/src/sampler-names.ts, style 'comfyui').
 * - steps / cfg / sampler_name / scheduler: unset = the model's per-model default (shared/src/model-defaults.ts)
 *   when it has one, else the seed document's (IMG2IMG_DEFAULTS).
 * - denoise_strength: how much of the source is re-noised; ComfyUI semantics: exactly `steps` steps run
 *   over the shortened schedule (GenerationJob strength_schedule 'steps'); default 0.75. Text-to-image starts
 *   from noise, so there a value other than 1 is a 400 naming the field (never ignored).
 * - image_url: https URL (http only with the ALLOW_HTTP_IMAGE_URLS dev flag), a data: URL or bare base64;
 *   '' = text-to-image.
 * - response_format (`url` | `b64_json`, default url), output_format and link_ttl_seconds are our extensions.
 */
export const Img2ImgRequestSchema = z.object({
  model: z.string().min(1).max(256).optional(),
  seed: publicSeedSchema({ allowRandom: false }).default(IMG2IMG_DEFAULTS.seed).describe('Seed of image 0 (0 is a real seed), up to 2^64 − 1 (a JSON integer, read exactly, or a decimal string); image i uses seed + i.'),
  steps: z.number().int().min(1).max(MAX_SAMPLING_STEPS).optional().describe(`Sampling steps; unset: the model's per-model default, else ${IMG2IMG_DEFAULTS.steps}.`),
  batch_size: z.number().int().min(1).max(MAX_IMAGES_PER_REQUEST).default(IMG2IMG_DEFAULTS.batch_size),
  width: side('width', IMG2IMG_DEFAULTS.width),
  height: side('height', IMG2IMG_DEFAULTS.height),
  sampler_name: z.string().min(1).optional().describe(`ComfyUI sampler name (euler, euler_ancestral, dpmpp_2m, …); unset: the model's per-model default, else ${IMG2IMG_DEFAULTS.sampler_name}.`),
  cfg: z.number().min(0).max(50).optional().describe(`CFG scale; unset: the model's per-model default, else ${IMG2IMG_DEFAULTS.cfg}.`),
  denoise_strength: z
    .number()
    .min(0)
    .max(1)
    .optional()
    .describe(`How much of the source is re-noised (default ${IMG2IMG_DEFAULTS.denoise_strength}); exactly \`steps\` steps run (ComfyUI). Text-to-image (image_url "") always starts from noise: only 1 is accepted there.`),
  scheduler: z.string().min(1).optional().describe(`ComfyUI scheduler: normal, karras, exponential, sgm_uniform, simple, ddim_uniform, beta; unset: the model's per-model default, else ${IMG2IMG_DEFAULTS.scheduler}.`),
  prompt: z.string().max(MAX_PROMPT_LENGTH).default(IMG2IMG_DEFAULTS.prompt),
  negative_prompt: z.string().max(MAX_PROMPT_LENGTH).default(IMG2IMG_DEFAULTS.negative_prompt),
  image_url: z
    .string()
    .default(IMG2IMG_DEFAULTS.image_url)
    .describe('Source image: https URL (public hosts only), data: URL or base64; "" = text-to-image. PNG, JPEG or WebP, at most 4096×4096.'),
  response_format: z.enum(['url', 'b64_json']).default('url'),
  output_format: OutputFormatSchema.default('png'),
  /** Lifetime of the returned links in seconds (checked against LINK_TTL_MAX_SECONDS by the edge). */
  link_ttl_seconds: z.number().int().optional(),
  /** Add-ons (extension): loras, embeddings, vae (shared/src/api/addon-fields.ts). */
  ...openAiAddonFields,
});
export type Img2ImgRequest = z.infer<typeof Img2ImgRequestSchema>;
export type Img2ImgRequestInput = z.input<typeof Img2ImgRequestSchema>;

/**
 * The parameters actually used, echoed in the response: the request's fields after defaults, the model
 * chosen, the seed of every image, the mode, and `image_url` (a data: URL or base64 is summarised as
 * "data:<mime>;base64,… (<n> bytes)" rather than echoed).
 */
export const Img2ImgParametersSchema = z.object({
  model: z.string(),
  mode: z.enum(['txt2img', 'img2img']),
  seed: SeedSchema,
  seeds: z.array(SeedSchema),
  steps: z.number().int(),
  batch_size: z.number().int(),
  width: z.number().int(),
  height: z.number().int(),
  sampler_name: z.string(),
  scheduler: z.string(),
  cfg: z.number(),
  denoise_strength: z.number(),
  prompt: z.string(),
  negative_prompt: z.string(),
  image_url: z.string(),
});
export type Img2ImgParameters = z.infer<typeof Img2ImgParametersSchema>;

/**
 * Response: OpenAI's `{created, data}` shape plus `parameters`, `usage` and `receipt` (the GPU
 * service's reproducibility receipt: model + content hash, resolved sampler/scheduler, seeds, steps,
 * cfg, size, engine and onnxruntime versions).
 */
export const Img2ImgResponseSchema = z.object({
  created: z.number().int(),
  data: z.array(ImageDataSchema),
  parameters: Img2ImgParametersSchema,
  usage: ImageUsageSchema.optional(),
  receipt: GenerationParamsSchema.optional(),
});
export type Img2ImgResponse = z.infer<typeof Img2ImgResponseSchema>;
