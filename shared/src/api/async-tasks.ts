import { z } from 'zod';
import { OutputFormatSchema } from '../generation-job';
import { publicSeedSchema, SeedSchema } from '../seed';
import { PublicEmbeddingSchema, PublicLoraSchema } from './addon-fields';
import { FacerestoreRoleSchema, ModelKindSchema } from './models';

/**
 * The async task API in the Novita / PPInfra v3 style (README "Public API"):
 * `POST /v3/async/txt2img|img2img|inpainting` with `{extra, request}` → `{task_id}`, then
 * `GET /v3/async/task-result?task_id=` and `GET /v3/model?filter.types=`.
 *
 * Required fields follow Novita (model_name, prompt, width, height, image_num, steps, guidance_scale,
 * sampler_name); the rest are optional. Unknown fields are dropped. Ranges are Novita's.
 * Field paths in 400 errors are dotted from the body root ("request.width", "extra.webhook.url").
 */

/** Ranges of README "Public API". */
export const ASYNC_PROMPT_MAX_LENGTH = 1024;
export const ASYNC_MIN_SIDE = 128;
export const ASYNC_MAX_SIDE = 2048;
export const ASYNC_MAX_IMAGES = 8;
export const ASYNC_MAX_STEPS = 100;
export const ASYNC_MIN_GUIDANCE = 1;
export const ASYNC_MAX_GUIDANCE = 30;
export const ASYNC_MAX_LORAS = 5;
export const ASYNC_MAX_EMBEDDINGS = 5;
/** Default img2img / inpainting denoise strength (A1111's denoising_strength default). */
export const ASYNC_DEFAULT_STRENGTH = 0.75;

/**
 * Novita's built-in hires-fix upscaler names → GenerationJob.hires_fix.upscaler. Any other name is the id of an
 * upscaler model the deployment lists (kind `upscaler`: ESRGAN-family ONNX files in MODELS_DIR/upscale_models, e.g.
 * `R-ESRGAN 4x+` for `upscale_models/R-ESRGAN 4x+.onnx`).
 */
export const ASYNC_HIRES_UPSCALERS = { Latent: 'latent', 'Latent (nearest)': 'latent-nearest', Lanczos: 'lanczos' } as const;
export type AsyncHiresUpscaler = keyof typeof ASYNC_HIRES_UPSCALERS;

/** A side in pixels: Novita's 128..2048, and a multiple of 8 (latents are 8× smaller). */
const SideSchema = z
  .number()
  .int()
  .min(ASYNC_MIN_SIDE)
  .max(ASYNC_MAX_SIDE)
  .refine((side) => side % 8 === 0, 'must be a multiple of 8');

/** `extra`: output format and an optional webhook called when the task ends. */
export const AsyncExtraSchema = z
  .object({
    response_image_type: OutputFormatSchema.default('png'),
    webhook: z.object({ url: z.string().min(1).max(2048) }).optional(),
  })
  .default({ response_image_type: 'png' });
export type AsyncExtra = z.infer<typeof AsyncExtraSchema>;

/** `request.loras[i]`: a LoRA by name (GET /v3/model?filter.types=lora) and its weight. */
export const AsyncLoraSchema = PublicLoraSchema;

/** `request.hires_fix`: second pass at the target size (A1111 "Hires. fix"). */
export const AsyncHiresFixSchema = z.object({
  target_width: SideSchema,
  target_height: SideSchema,
  strength: z.number().min(0).max(1).default(0.5),
  upscaler: z.string().min(1).max(256).default('Latent').describe('Latent, Latent (nearest), Lanczos, or an upscaler model by id (GET /v3/model?filter.types=upscaler).'),
});

/** The generation fields shared by txt2img, img2img and inpainting. */
const generationFields = {
  model_name: z.string().min(1).max(256),
  prompt: z.string().min(1, 'prompt must not be empty').max(ASYNC_PROMPT_MAX_LENGTH),
  negative_prompt: z.string().max(ASYNC_PROMPT_MAX_LENGTH).default(''),
  width: SideSchema,
  height: SideSchema,
  image_num: z.number().int().min(1).max(ASYNC_MAX_IMAGES),
  /** Required (Novita), except for models with a per-model default (shared/src/model-defaults.ts: FLUX.1, SD 3.x). */
  steps: z.number().int().min(1).max(ASYNC_MAX_STEPS).optional().describe('Required unless the model has a per-model default (FLUX.1, SD 3.x: README "Per-model defaults").'),
  guidance_scale: z.number().min(ASYNC_MIN_GUIDANCE).max(ASYNC_MAX_GUIDANCE).optional().describe('CFG scale. Required unless the model has a per-model default.'),
  /** A1111 combined names ("Euler a", "DPM++ 2M Karras"); checked by resolveSampler('a1111'). Required unless per-model default. */
  sampler_name: z.string().min(1).optional().describe('A1111 sampler name. Required unless the model has a per-model default.'),
  /** ≥ −1; −1 (default) = a random seed, chosen at submit time and returned in extra.seed. */
  seed: publicSeedSchema({ allowRandom: true }).default(-1),
  sd_vae: z.string().min(1).max(256).optional().describe('A standalone VAE by id (GET /v3/model?filter.types=vae) replacing the checkpoint\'s for decode and encode.'),
  loras: z
    .array(AsyncLoraSchema)
    .max(ASYNC_MAX_LORAS)
    .optional()
    .describe('LoRAs by id (GET /v3/model?filter.types=lora) with strength −4..4 (default 1); at most 5 counting the prompt\'s <lora:name:strength> tags.'),
  embeddings: z
    .array(PublicEmbeddingSchema)
    .max(ASYNC_MAX_EMBEDDINGS)
    .optional()
    .describe('Textual-inversion embeddings by id (GET /v3/model?filter.types=textualinversion); their names in the prompts are replaced by their vectors.'),
  hires_fix: AsyncHiresFixSchema.optional(),
  /**
   * SDXL base → refiner, AUTOMATIC1111's refiner_switch_at: the base runs the first ⌈switch_at × steps⌉ steps,
   * the refiner the rest; 0 = no refiner.
   */
  refiner: z.object({ switch_at: z.number().min(0).max(1) }).optional(),
  /** The SDXL refiner checkpoint for `refiner` (default: the deployment's SDXL_REFINER_MODEL). */
  refiner_model: z.string().min(1).max(256).optional(),
  clip_skip: z.number().int().min(1).max(12).optional(),
  enable_transparent_background: z
    .boolean()
    .default(false)
    .describe('SDXL checkpoints only (Novita): alpha from the deployment\'s matting model; png or webp output.'),
  restore_faces: z
    .boolean()
    .default(false)
    .describe("Restore faces with the deployment's face detector and restorer (kind facerestore); a 400 when it has none."),
  face_restore_fidelity: z
    .number()
    .min(0)
    .max(1)
    .optional()
    .describe("With restore_faces, for a CodeFormer-style restorer: its fidelity w, 0 = strongest restoration, 1 = closest to the input (default 0.5)."),
};

/** `request` of POST /v3/async/txt2img. */
export const AsyncTxt2ImgRequestSchema = z.object(generationFields);

/** Source image fields of img2img / inpainting: exactly one of image_base64 / image_url (checked by the route). */
const imageFields = {
  image_base64: z.string().min(1).optional(),
  image_url: z.string().min(1).max(2048).optional(),
  /** Denoise strength in [0, 1]; A1111 semantics (≈ steps × strength steps run). */
  strength: z.number().min(0).max(1).default(ASYNC_DEFAULT_STRENGTH),
};

/** `request` of POST /v3/async/img2img. */
export const AsyncImg2ImgRequestSchema = z.object({ ...generationFields, ...imageFields });

/** `request` of POST /v3/async/inpainting: the mask's WHITE pixels are repainted (Novita / A1111). */
export const AsyncInpaintingRequestSchema = z.object({
  ...generationFields,
  ...imageFields,
  mask_image_base64: z.string().min(1).optional(),
  mask_image_url: z.string().min(1).max(2048).optional(),
});

export type AsyncTxt2ImgRequest = z.infer<typeof AsyncTxt2ImgRequestSchema>;
export type AsyncImg2ImgRequest = z.infer<typeof AsyncImg2ImgRequestSchema>;
export type AsyncInpaintingRequest = z.infer<typeof AsyncInpaintingRequestSchema>;
/** Any of the three request bodies (img2img/inpainting fields optional). */
export type AsyncGenerationRequest = AsyncTxt2ImgRequest & Partial<AsyncInpaintingRequest>;

/** Body of POST /v3/async/txt2img. */
export const AsyncTxt2ImgBodySchema = z.object({ extra: AsyncExtraSchema, request: AsyncTxt2ImgRequestSchema });
/** Body of POST /v3/async/img2img. */
export const AsyncImg2ImgBodySchema = z.object({ extra: AsyncExtraSchema, request: AsyncImg2ImgRequestSchema });
/** Body of POST /v3/async/inpainting. */
export const AsyncInpaintingBodySchema = z.object({ extra: AsyncExtraSchema, request: AsyncInpaintingRequestSchema });
export type AsyncTxt2ImgBody = z.infer<typeof AsyncTxt2ImgBodySchema>;
export type AsyncImg2ImgBody = z.infer<typeof AsyncImg2ImgBodySchema>;
export type AsyncInpaintingBody = z.infer<typeof AsyncInpaintingBodySchema>;

/** Response of the three submit endpoints. */
export const AsyncSubmitResponseSchema = z.object({ task_id: z.string() });
export type AsyncSubmitResponse = z.infer<typeof AsyncSubmitResponseSchema>;

/** Novita task statuses (QUEUED → PROCESSING → SUCCEED | FAILED; a cancelled task reads FAILED). */
export const AsyncTaskStatusSchema = z.enum([
  'TASK_STATUS_QUEUED',
  'TASK_STATUS_PROCESSING',
  'TASK_STATUS_SUCCEED',
  'TASK_STATUS_FAILED',
]);
export type AsyncTaskStatus = z.infer<typeof AsyncTaskStatusSchema>;

/** Novita task types, one per submit endpoint. */
export const AsyncTaskTypeSchema = z.enum(['TXT_TO_IMG', 'IMG_TO_IMG', 'INPAINTING']);
export type AsyncTaskType = z.infer<typeof AsyncTaskTypeSchema>;

/** One finished image: a signed link (valid image_url_ttl seconds from the read), its format and seed. */
export const AsyncTaskImageSchema = z.object({
  image_url: z.string(),
  /** Seconds the link stays valid, counted from when the result was read. */
  image_url_ttl: z.number().int(),
  /** png | jpeg | webp. */
  image_type: z.string(),
  /** Seed of this image (extension: image i uses extra.seed + i). */
  seed: SeedSchema,
});
export type AsyncTaskImage = z.infer<typeof AsyncTaskImageSchema>;

/**
 * GET /v3/async/task-result (and the webhook body). `reason` is "" unless FAILED; `eta` is seconds
 * (0 when unknown or done); `progress_percent` 0..100. `extra.seed` is the base seed (−1 → the one
 * picked); `extra.debug_info` has submit/complete times (unix ms), attempts (GPU submissions) and the
 * reproducibility receipt (model + hash, sampler, scheduler, seeds, steps, cfg, size, versions).
 */
export const AsyncTaskResultSchema = z.object({
  task: z.object({
    task_id: z.string(),
    task_type: AsyncTaskTypeSchema,
    status: AsyncTaskStatusSchema,
    reason: z.string(),
    eta: z.number().int(),
    progress_percent: z.number().int().min(0).max(100),
  }),
  images: z.array(AsyncTaskImageSchema),
  extra: z.object({
    seed: SeedSchema,
    debug_info: z.object({
      submit_time_ms: z.number().int(),
      complete_time_ms: z.number().int().nullable(),
      attempts: z.number().int(),
      receipt: z.record(z.string(), z.unknown()).nullable(),
    }),
  }),
});
export type AsyncTaskResult = z.infer<typeof AsyncTaskResultSchema>;

/** Query of GET /v3/async/task-result. */
export const AsyncTaskResultQuerySchema = z.object({ task_id: z.string().min(1).max(128) });

/** Query of GET /v3/model: `filter.types` is one kind or a comma-separated list (default: every kind). */
export const AsyncModelQuerySchema = z.object({
  'filter.types': z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value.trim() === '') return [...ModelKindSchema.options];
      const kinds = value.split(',').map((kind) => kind.trim());
      for (const kind of kinds) {
        if (!ModelKindSchema.safeParse(kind).success) {
          ctx.addIssue({ code: 'custom', message: `unknown type "${kind}"; accepted: ${ModelKindSchema.options.join(', ')}` });
          return z.NEVER;
        }
      }
      return kinds as z.infer<typeof ModelKindSchema>[];
    }),
});

/**
 * One model of GET /v3/model, in Novita's shape: `sd_name` is the name to pass as model_name /
 * loras[].model_name / sd_vae / embeddings[].model_name; `type` the kind; `status` 1 = usable now
 * (loaded or loadable), 0 = the service reported an error for it. `base_model` is our size-class guess
 * from native_size ("SDXL" when ≥ 1024², else "SD 1.5"); `capabilities`, `native_size`, `max_pixels`
 * are our extensions.
 */
export const AsyncModelSchema = z.object({
  id: z.string(),
  name: z.string(),
  sd_name: z.string(),
  type: ModelKindSchema,
  status: z.union([z.literal(0), z.literal(1)]),
  base_model: z.string(),
  capabilities: z.array(z.string()),
  native_size: z.tuple([z.number().int(), z.number().int()]),
  max_pixels: z.number().int(),
  /** The detected architecture of an engine-built checkpoint ("Stable Diffusion 1.x", …). */
  architecture: z.string().optional(),
  /** Face-restoration models (type facerestore): detector or restorer. */
  role: FacerestoreRoleSchema.optional(),
  /** Why the model cannot be used (status 0), when it cannot. */
  reason: z.string().optional(),
});
export type AsyncModel = z.infer<typeof AsyncModelSchema>;

/** Response of GET /v3/model. */
export const AsyncModelListSchema = z.object({ models: z.array(AsyncModelSchema) });
export type AsyncModelList = z.infer<typeof AsyncModelListSchema>;
