import { z } from 'zod';
import { GenerationParamsSchema, OutputFormatSchema } from '../generation-job';
import { publicSeedSchema, SeedSchema } from '../seed';
import { openAiAddonFields } from './addon-fields';
import { SizeSchema } from './size';

/** Limits of the OpenAI-style generation request (README "Public API"). */
export const MAX_PROMPT_LENGTH = 4000;
export const MAX_IMAGES_PER_REQUEST = 10;
export const MAX_SAMPLING_STEPS = 200;
/** Largest OpenAI `partial_images` (streaming previews). */
export const MAX_PARTIAL_IMAGES = 3;

/** GPUStack "advanced" defaults (README "Public API"). */
export const DEFAULT_SAMPLE_METHOD = 'euler_a';
export const DEFAULT_SCHEDULE_METHOD = 'discrete';
export const DEFAULT_SAMPLING_STEPS = 10;
export const DEFAULT_CFG_SCALE = 4.5;
export const DEFAULT_STRENGTH = 0.75;

export const QualitySchema = z.enum(['standard', 'hd', 'low', 'medium', 'high', 'auto']);
export type Quality = z.infer<typeof QualitySchema>;

/**
 * `quality` → sampling steps, used only when `sampling_steps` is not given (an explicit
 * `sampling_steps` always wins). `standard`, `auto` and `medium` equal the GPUStack default of 10 so
 * that a request without either field gets the same steps whichever way it is read.
 */
export const QUALITY_STEPS: Readonly<Record<Quality, number>> = {
  low: 6,
  standard: 10,
  auto: 10,
  medium: 10,
  high: 20,
  hd: 30,
};

/**
 * OpenAI `background`: `transparent` gives images with alpha from the deployment's matting model (any checkpoint;
 * output_format png or webp; a 400 naming the field when the deployment lists no model of kind `matting`);
 * `opaque` and `auto` give RGB images.
 */
export const BackgroundSchema = z.enum(['transparent', 'opaque', 'auto']);
/** OpenAI `moderation` (generations). No content filter runs on this deployment: both values behave alike. */
export const ModerationSchema = z.enum(['low', 'auto']);
/** OpenAI `output_compression`: 0..100, the JPEG/WebP encoder quality (a 400 with png, which is lossless). */
export const OutputCompressionSchema = z.number().int().min(0).max(100);

/** GPUStack preview names → GenerationJob preview modes (previews are only sent when streaming). */
export const PREVIEW_MODES = { faster: 'fast', normal: 'full', none: 'none' } as const;
export const PublicPreviewSchema = z.enum(['faster', 'normal', 'none']);

/**
 * Body of POST /v1/images/generations (alias /api/images/generations): OpenAI's fields plus the
 * GPUStack advanced fields (stable-diffusion.cpp names). Unknown fields are dropped.
 *
 * - `size`: "WxH" or "auto"; omitted/auto = the model's native_size. Parsed to {width, height} | null.
 * - `seed`: integer ≥ 0; −1 or omitted = random (chosen by the edge and returned per image).
 *   Image i of the batch uses seed + i.
 * - `style`: accepted for OpenAI compatibility and recorded with the stored image; it does not change
 *   the pixels (no hidden prompt suffix, so a prompt + seed reproduces across clients).
 * - `sample_method`, `schedule_method`, `sampling_steps`, `cfg_scale`: unset = the model's per-model default
 *   (shared/src/model-defaults.ts, e.g. FLUX.1-schnell 4 steps cfg 1) when it has one, else the GPUStack defaults.
 * - `guidance`: passed to the job when given (distilled-guidance models); unset = the model's per-model default.
 * - `strength`: img2img denoise strength, meaningful only with an `image` (not served here yet).
 * - `image`: recognised so it is refused with a clear 400 instead of being ignored (until edits land).
 * - `stream: true`: Server-Sent Events (README, "Streaming"). `partial_images` (OpenAI,
 *   0..3) caps the `image_generation.partial_image` events, spread over the run; omitted = every
 *   preview the service sends for `preview` (GPUStack live preview). `partial_images: 0` or
 *   `preview: "none"` turns previews off.
 */
export const ImageGenerationRequestSchema = z.object({
  prompt: z.string().min(1, 'prompt must not be empty').max(MAX_PROMPT_LENGTH),
  model: z.string().min(1).max(256).optional(),
  n: z.number().int().min(1).max(MAX_IMAGES_PER_REQUEST).default(1),
  size: SizeSchema.optional(),
  response_format: z.enum(['url', 'b64_json']).default('url'),
  seed: publicSeedSchema({ allowRandom: true }).optional(),
  negative_prompt: z.string().max(MAX_PROMPT_LENGTH).default(''),
  quality: QualitySchema.optional(),
  style: z.enum(['vivid', 'natural']).default('vivid'),
  output_format: OutputFormatSchema.default('png'),
  /** gpt-image-1 style 0..100 for jpeg/webp; used as the encoder quality (default 90). */
  output_compression: OutputCompressionSchema.optional(),
  background: BackgroundSchema.optional().describe('transparent: alpha from the deployment\'s matting model (output_format png or webp; 400 when it has none); opaque / auto: RGB.'),
  moderation: ModerationSchema.optional(),
  user: z.string().max(256).optional(),
  stream: z.boolean().default(false),
  image: z.union([z.string(), z.array(z.string())]).optional(),
  sample_method: z.string().min(1).optional().describe(`Sampler (stable-diffusion.cpp name); unset: the model's per-model default, else ${DEFAULT_SAMPLE_METHOD}.`),
  schedule_method: z.string().min(1).optional().describe(`Schedule; unset: the model's per-model default, else ${DEFAULT_SCHEDULE_METHOD}.`),
  sampling_steps: z.number().int().min(1).max(MAX_SAMPLING_STEPS).optional(),
  cfg_scale: z.number().min(0).max(50).optional().describe(`CFG scale; unset: the model's per-model default, else ${DEFAULT_CFG_SCALE}.`),
  guidance: z.number().min(0).max(50).optional(),
  strength: z.number().min(0).max(1).default(DEFAULT_STRENGTH),
  preview: PublicPreviewSchema.default('faster'),
  partial_images: z.number().int().min(0).max(MAX_PARTIAL_IMAGES).optional(),
  /** Lifetime of the returned links in seconds (bounds checked by the edge: LINK_TTL_MAX_SECONDS). */
  link_ttl_seconds: z.number().int().optional(),
  /** Add-ons (extension): loras, embeddings, vae (shared/src/api/addon-fields.ts). */
  ...openAiAddonFields,
});
export type ImageGenerationRequest = z.infer<typeof ImageGenerationRequestSchema>;
export type ImageGenerationRequestInput = z.input<typeof ImageGenerationRequestSchema>;

/** One generated image in the response: exactly one of url / b64_json, plus the seed used. */
export const ImageDataSchema = z.object({
  url: z.string().optional(),
  b64_json: z.string().optional(),
  seed: SeedSchema,
  revised_prompt: z.string().optional(),
});
export type ImageData = z.infer<typeof ImageDataSchema>;

/**
 * The `usage` object: OpenAI's token fields (the SDK's `ImagesResponse.Usage`) plus what the request cost in
 * diffusion work. Tokens here: text_tokens = CLIP tokens of the prompt and negative prompt (as the model's
 * tokenizer counts them, without bos/eos/padding); image tokens = latent positions, (width/8)·(height/8)
 * per image — of the source image for input_tokens_details.image_tokens (img2img, edits, variations), of
 * every output image for output_tokens. compute_units = steps × megapixels × images (what the per-minute
 * compute budget counts).
 */
export const ImageUsageSchema = z.object({
  input_tokens: z.number().int(),
  input_tokens_details: z.object({ image_tokens: z.number().int(), text_tokens: z.number().int() }),
  output_tokens: z.number().int(),
  output_tokens_details: z.object({ image_tokens: z.number().int() }),
  total_tokens: z.number().int(),
  images: z.number().int(),
  steps: z.number().int(),
  width: z.number().int(),
  height: z.number().int(),
  compute_units: z.number(),
});
export type ImageUsage = z.infer<typeof ImageUsageSchema>;

/**
 * Response of POST /v1/images/generations. `created` is unix seconds. `receipt` (extension) is the
 * reproducibility receipt: every value that decides the pixels (model + content hash, sampler,
 * scheduler, seeds, steps, cfg, size, engine and onnxruntime versions).
 */
export const ImagesResponseSchema = z.object({
  created: z.number().int(),
  /** OpenAI: "transparent" when the images carry a matting model's alpha (background "transparent"), else "opaque". */
  background: z.enum(['transparent', 'opaque']).optional(),
  output_format: OutputFormatSchema.optional(),
  /** OpenAI's low | medium | high for the steps used (quality low = 6 steps, standard/auto/medium = 10, high/hd = more). */
  quality: z.enum(['low', 'medium', 'high']).optional(),
  /** "WxH" of the outputs. */
  size: z.string().optional(),
  data: z.array(ImageDataSchema),
  usage: ImageUsageSchema.optional(),
  receipt: GenerationParamsSchema.optional(),
});
export type ImagesResponse = z.infer<typeof ImagesResponseSchema>;
