import { z } from 'zod';
import { SeedSchema } from './seed';

/**
 * The one internal job every public API style is translated into (docs/architecture.md, "One internal
 * job"). The edge builds it; the GPU service validates it again on POST /v1/jobs.
 * Sizes are in pixels, strength is the img2img denoise strength in [0, 1].
 * Image i of a batch uses seed `seed + i`, so one image of a batch can be reproduced alone.
 */
export { MAX_SEED } from './seed';
/** Most LoRAs, and most embeddings, one job may use (the async API's limit). */
export const MAX_ADDONS = 5;

export const OutputFormatSchema = z.enum(['png', 'jpeg', 'webp']);
export const PreviewModeSchema = z.enum(['none', 'fast', 'full']);
export const NoiseGeneratorSchema = z.enum(['cpu', 'philox']);

export const GenerationJobSchema = z.object({
  id: z.string().min(1).max(128),
  tenant: z.string().min(1).max(128).default('local'),
  model: z.string().min(1).max(256),
  /**
   * Set by the edge only for an API key with the `models:download` scope: an `hf.co/…` model may come from any
   * repository, not only those the GPU service's HF_ALLOWED_REPOS allows (the size limits still apply).
   */
  download_any_repo: z.boolean().default(false),
  mode: z.enum(['txt2img', 'img2img', 'inpaint']).default('txt2img'),
  prompt: z.string().max(20_000),
  negative_prompt: z.string().max(20_000).default(''),
  width: z.number().int().min(64).max(4096).multipleOf(8),
  height: z.number().int().min(64).max(4096).multipleOf(8),
  batch_size: z.number().int().min(1).max(16).default(1),
  /** Seed of image 0: a safe integer, or a decimal string above 2^53 − 1 (up to 2^64 − 1; shared/src/seed.ts). */
  seed: SeedSchema,
  steps: z.number().int().min(1).max(200),
  /** Canonical sampler id (shared/src/sampler-names.ts), e.g. "euler_ancestral". */
  sampler: z.string().min(1).default('euler'),
  /** Canonical schedule id, e.g. "normal", "karras". */
  scheduler: z.string().min(1).default('normal'),
  /** Per-style sampler options resolved by the name table (eta, s_noise, variant flags). */
  sampler_options: z
    .object({
      eta: z.number().min(0).max(10).optional(),
      s_noise: z.number().min(0).max(10).optional(),
      variant: z.record(z.string(), z.string()).optional(),
    })
    .default({}),
  /** Build the schedule for steps+1 and drop its penultimate sigma (docs/samplers.md §1.3). */
  discard_penultimate_sigma: z.boolean().default(false),
  cfg_scale: z.number().min(0).max(50).default(7),
  guidance: z.number().min(0).max(50).optional(),
  clip_skip: z.number().int().min(1).max(12).optional(),
  /** Source image (base64 of PNG/JPEG/WebP bytes) for img2img / inpaint. */
  init_image: z.string().optional(),
  /** Mask image (base64) for inpaint; see mask_mode. */
  mask: z.string().optional(),
  /** alpha: transparent pixels are repainted (OpenAI); white: white pixels are repainted. */
  mask_mode: z.enum(['alpha', 'white']).default('white'),
  strength: z.number().min(0).max(1).default(0.75),
  /** How strength maps to steps run: 'steps' (ComfyUI: exactly `steps`), 'scaled' (A1111/sd.cpp: ≈ steps × strength). */
  strength_schedule: z.enum(['steps', 'scaled']).default('scaled'),
  hires_fix: z
    .object({
      target_width: z.number().int().min(64).max(4096).multipleOf(8),
      target_height: z.number().int().min(64).max(4096).multipleOf(8),
      strength: z.number().min(0).max(1).default(0.5),
      steps: z.number().int().min(1).max(200).optional(),
      /**
       * How the first pass is brought to the target size: `latent` (bilinear) / `latent-nearest` resize the latents;
       * `lanczos` resizes the decoded image; `model` runs the upscaler model `upscale_model` (MODELS_DIR/upscale_models)
       * on the decoded image in overlapping tiles. The non-latent ones re-encode the image for the second pass.
       */
      upscaler: z.enum(['latent', 'latent-nearest', 'lanczos', 'model']).default('latent'),
      /** The upscaler model's id (relative path under MODELS_DIR/upscale_models without `.onnx`) for upscaler `model`. */
      upscale_model: z.string().min(1).max(256).optional(),
    })
    .optional(),
  /**
   * `transparent`: the matting model (`matting_model`, else the first usable one of MODELS_DIR/matting) gives each
   * image an alpha channel; needs output png or webp. `opaque`: RGB.
   */
  background: z.enum(['opaque', 'transparent']).default('opaque'),
  /** The matting model's id (relative path under MODELS_DIR/matting without `.onnx`) for `background` transparent. */
  matting_model: z.string().min(1).max(256).optional(),
  /**
   * Restore faces (gpu-service/src/postprocess/faces/): detect with the first usable face detector of
   * MODELS_DIR/facerestore (by id), restore each face with `face_restore_model` (else the first usable restorer by
   * id) and paste it back feathered; runs before the matting stage.
   */
  restore_faces: z.boolean().default(false),
  /** The face restorer's id (relative path under MODELS_DIR/facerestore without `.onnx`), with restore_faces. */
  face_restore_model: z.string().min(1).max(256).optional(),
  /**
   * CodeFormer's fidelity `w` in [0, 1] (0 = strongest restoration, 1 = closest to the input; default 0.5), for a
   * restorer with a fidelity input; with restore_faces only.
   */
  face_restore_fidelity: z.number().min(0).max(1).optional(),
  output: z
    .object({
      format: OutputFormatSchema.default('png'),
      quality: z.number().int().min(1).max(100).default(90),
    })
    .default({ format: 'png', quality: 90 }),
  preview: PreviewModeSchema.default('none'),
  /** Where the initial noise comes from: 'cpu' reproduces torch.randn on the CPU for the seed. */
  rng: NoiseGeneratorSchema.default('cpu'),
  /**
   * LoRAs by id (path under MODELS_DIR/loras without extension) with their strength: W += strength · ΔW.
   * `<lora:name:strength>` tags in the prompt add to this list (shared/src/prompt-addons.ts).
   */
  loras: z.array(z.object({ name: z.string().min(1).max(256), strength: z.number().min(-4).max(4).default(1) })).max(MAX_ADDONS).default([]),
  /** Textual-inversion embeddings (ids under MODELS_DIR/embeddings) the prompts may name. */
  embeddings: z.array(z.object({ name: z.string().min(1).max(256) })).max(MAX_ADDONS).default([]),
  /** A standalone VAE (id under MODELS_DIR/vae) replacing the checkpoint's for decode and encode. */
  vae: z.string().min(1).max(256).optional(),
  /**
   * SDXL micro-conditioning (diffusers names; [height, width] and [top, left] in pixels). Defaults: original and
   * target size = the generated size, crop (0, 0). Ignored by models without time ids (SD 1.x / 2.x).
   */
  original_size: z.tuple([z.number().int().min(1).max(16384), z.number().int().min(1).max(16384)]).optional(),
  crops_coords_top_left: z.tuple([z.number().int().min(0).max(16384), z.number().int().min(0).max(16384)]).optional(),
  target_size: z.tuple([z.number().int().min(1).max(16384), z.number().int().min(1).max(16384)]).optional(),
  /** SDXL refiner time ids: aesthetic score of the conditional (default 6) and unconditional (default 2.5) row. */
  aesthetic_score: z.number().min(0).max(10).optional(),
  negative_aesthetic_score: z.number().min(0).max(10).optional(),
  /**
   * SDXL base → refiner (AUTOMATIC1111's `refiner_switch_at`, by sampling steps): the base runs the first
   * ⌈refiner_switch_at × steps⌉ steps of each pass, the refiner the rest on the base's latents; 0 or absent = no
   * refiner, 1 = every step on the base.
   */
  refiner_switch_at: z.number().min(0).max(1).optional(),
  /** The refiner checkpoint (an id like `model`); default: the GPU service's SDXL_REFINER_MODEL. */
  refiner_model: z.string().min(1).max(256).optional(),
});

/** A GenerationJob after defaults are applied. */
export type GenerationJob = z.infer<typeof GenerationJobSchema>;
/** A GenerationJob as sent (defaults may be omitted). */
export type GenerationJobInput = z.input<typeof GenerationJobSchema>;

/** One generated image as the GPU service returns it. `b64` is the encoded file (png/jpeg/webp). */
export const GeneratedImageSchema = z.object({
  index: z.number().int(),
  seed: SeedSchema,
  mime_type: z.string(),
  b64: z.string(),
});

/** One post-processing stage of a receipt: what ran (`hires_upscale`, `face_detect`, `face_restore`, `matting`), its model id and file SHA-256. */
export const PostprocessStageSchema = z.object({
  stage: z.string(),
  model: z.string(),
  hash: z.string(),
  /** `face_restore`: faces restored in each image, by image order (0: that image is unchanged). */
  faces: z.array(z.number().int()).optional(),
  /** `face_restore`: the fidelity fed to a restorer that takes one. */
  fidelity: z.number().optional(),
});
export type PostprocessStage = z.infer<typeof PostprocessStageSchema>;

/** The reproducibility receipt: every value that decides the pixels. */
export const GenerationParamsSchema = z.object({
  model: z.string(),
  model_hash: z.string().optional(),
  mode: z.string(),
  prompt: z.string(),
  negative_prompt: z.string(),
  width: z.number().int(),
  height: z.number().int(),
  batch_size: z.number().int(),
  seed: SeedSchema,
  seeds: z.array(SeedSchema),
  steps: z.number().int(),
  sampler: z.string(),
  scheduler: z.string(),
  cfg_scale: z.number(),
  strength: z.number().optional(),
  rng: z.string(),
  /** Add-ons that shaped the pixels, each with its file's SHA-256. */
  loras: z.array(z.object({ name: z.string(), strength: z.number(), hash: z.string() })).optional(),
  embeddings: z.array(z.object({ name: z.string(), hash: z.string() })).optional(),
  vae: z.object({ name: z.string(), hash: z.string() }).optional(),
  /** SDXL micro-conditioning the job set (absent: the defaults, see the job fields). */
  original_size: z.tuple([z.number(), z.number()]).optional(),
  crops_coords_top_left: z.tuple([z.number(), z.number()]).optional(),
  target_size: z.tuple([z.number(), z.number()]).optional(),
  aesthetic_score: z.number().optional(),
  negative_aesthetic_score: z.number().optional(),
  /** The SDXL refiner that ran the last steps, its content hash and the switch point (absent without one). */
  refiner_model: z.string().optional(),
  refiner_model_hash: z.string().optional(),
  refiner_switch_at: z.number().optional(),
  /** The hires fix that ran (its upscaler, and the upscaler model's id for `model`). */
  hires_fix: z
    .object({ target_width: z.number().int(), target_height: z.number().int(), strength: z.number(), steps: z.number().int().optional(), upscaler: z.string(), upscale_model: z.string().optional() })
    .optional(),
  /** `transparent` when the images carry a matting model's alpha. */
  background: z.enum(['opaque', 'transparent']).optional(),
  /**
   * Every post-processing stage that ran, in order, with its model and the SHA-256 of the model's ONNX file:
   * `hires_upscale` (hires fix upscaler model), `matting` (background removal), and the face stages.
   */
  postprocess: z.array(PostprocessStageSchema).optional(),
  /** CLIP tokens of prompt + negative prompt as the model's tokenizer counts them (no bos/eos/padding). */
  text_tokens: z.number().int().optional(),
  engine_version: z.string(),
  onnxruntime_version: z.string(),
});

export const GenerationResultSchema = z.object({
  id: z.string(),
  images: z.array(GeneratedImageSchema),
  params: GenerationParamsSchema,
  timings: z.object({ total_ms: z.number(), queue_ms: z.number().optional() }),
});
export type GenerationResult = z.infer<typeof GenerationResultSchema>;
export type GenerationParams = z.infer<typeof GenerationParamsSchema>;
