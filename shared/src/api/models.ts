import { z } from 'zod';

/**
 * What a listed model is: a checkpoint (generates), an add-on (lora, vae, textualinversion), or a post-processing
 * model (matting: background removal; facerestore: face detector or restorer; upscaler: ESRGAN-family image
 * upscaler) from MODELS_DIR/matting, facerestore, upscale_models.
 */
export const ModelKindSchema = z.enum(['checkpoint', 'lora', 'vae', 'textualinversion', 'matting', 'facerestore', 'upscaler']);
/** The post-processing kinds of ModelKindSchema. */
export const POSTPROCESS_MODEL_KINDS = ['matting', 'facerestore', 'upscaler'] as const;
/** A face-restoration model's role. */
export const FacerestoreRoleSchema = z.enum(['detector', 'restorer']);
export const ModelCapabilitySchema = z.enum(['txt2img', 'img2img', 'inpaint']);

/**
 * One entry of the GPU service's GET /v1/models (README, "GPU hosts": internal API). `native_size` is [width, height] in pixels;
 * it and `max_pixels` are 0 for entries that cannot generate on their own (LoRA, VAE, embeddings) and for
 * broken folders (which carry `error`).
 */
/**
 * Facts of a checkpoint the GPU service's engine builds itself (single files and diffusers folders with
 * safetensors weights): file format, detected architecture ("Stable Diffusion 1.x", …), prediction type, the
 * element type the file stores and the float type the service runs, and the conversion cache's state
 * (`cached`: built, loads in seconds; `missing`: built on first use; `building`).
 */
export const CheckpointFactsSchema = z.object({
  format: z.enum(['safetensors', 'gguf', 'diffusers', 'pickle']).optional(),
  architecture: z.string().optional(),
  /** A release the tensors cannot tell apart, named by the model id (SD 3.5 Large: `turbo`); picks per-model defaults. */
  variant: z.string().optional(),
  /** `flow`: a flow-matching transformer (FLUX.1, Stable Diffusion 3.x). */
  prediction_type: z.enum(['epsilon', 'v_prediction', 'flow']).optional(),
  /** The canonical sampler ids this model accepts, when it accepts only some (flow models); absent: every sampler. */
  samplers: z.array(z.string()).optional(),
  stored_dtype: z.string().optional(),
  /** A GGUF file's own `general.architecture` metadata, when it has one. */
  gguf_architecture: z.string().optional(),
  dtype: z.string().optional(),
  cache: z.enum(['cached', 'building', 'missing']).optional(),
  /** Face-restoration models only: the detector or the restorer. */
  role: FacerestoreRoleSchema.optional(),
});

export const BackendModelSchema = z
  .object({
    id: z.string(),
    kind: ModelKindSchema,
    capabilities: z.array(ModelCapabilitySchema),
    native_size: z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]),
    /** Largest width × height the model accepts, in pixels. */
    max_pixels: z.number().int().nonnegative(),
    loaded: z.boolean(),
    error: z.string().optional(),
  })
  .extend(CheckpointFactsSchema.shape);
export type BackendModel = z.infer<typeof BackendModelSchema>;

/**
 * What `hf.co/<org>/<repo>` references may download on a GPU service (its HF_ALLOWED_REPOS glob patterns,
 * HF_MAX_MODEL_BYTES and MODELS_DIR_MAX_BYTES in bytes, 0 = no limit; gpu-service/src/models/hf-policy.ts).
 */
export const HfDownloadsSchema = z.object({
  allowed_repos: z.array(z.string()),
  max_model_bytes: z.number().int().nonnegative(),
  models_dir_max_bytes: z.number().int().nonnegative(),
});
export type HfDownloads = z.infer<typeof HfDownloadsSchema>;

export const BackendModelListSchema = z.object({ data: z.array(BackendModelSchema), hf_downloads: HfDownloadsSchema.optional() });
export type BackendModelList = z.infer<typeof BackendModelListSchema>;

/**
 * One model of the public GET /v1/models: OpenAI's model object ({id, object: "model", created,
 * owned_by}) plus our kind, capabilities, native_size and max_pixels.
 */
export const PublicModelSchema = z
  .object({
    id: z.string(),
    object: z.literal('model'),
    created: z.number().int(),
    owned_by: z.string(),
    kind: ModelKindSchema,
    capabilities: z.array(ModelCapabilitySchema),
    native_size: z.tuple([z.number().int(), z.number().int()]),
    max_pixels: z.number().int(),
    /** Why the model cannot be used now (a broken or unsupported file), when it cannot. */
    error: z.string().optional(),
  })
  .extend(CheckpointFactsSchema.shape);
export type PublicModel = z.infer<typeof PublicModelSchema>;

/**
 * `hf_downloads` of the public GET /v1/models: the GPU service's download rules (absent when it does not report
 * them) and whether the calling key may download any repository (`models:download` scope).
 */
export const PublicHfDownloadsSchema = HfDownloadsSchema.partial().extend({ any_repository: z.boolean() });

export const PublicModelListSchema = z.object({ object: z.literal('list'), data: z.array(PublicModelSchema), hf_downloads: PublicHfDownloadsSchema.optional() });
export type PublicModelList = z.infer<typeof PublicModelListSchema>;
