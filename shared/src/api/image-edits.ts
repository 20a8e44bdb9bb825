import { z } from 'zod';
import { formAddonFields } from './addon-fields';
import { OutputFormatSchema } from '../generation-job';
import { publicSeedSchema } from '../seed';
import {
  DEFAULT_CFG_SCALE,
  DEFAULT_SAMPLE_METHOD,
  DEFAULT_SCHEDULE_METHOD,
  DEFAULT_STRENGTH,
  MAX_IMAGES_PER_REQUEST,
  MAX_PROMPT_LENGTH,
  MAX_PARTIAL_IMAGES,
  MAX_SAMPLING_STEPS,
  BackgroundSchema,
  OutputCompressionSchema,
  PublicPreviewSchema,
  QualitySchema,
} from './openai-images';
import { SizeSchema } from './size';

/**
 * Request fields of POST /v1/images/edits and POST /v1/images/variations (README "Public API").
 *
 * Both accept multipart/form-data (OpenAI's format: every text field arrives as a string, so numbers and
 * booleans are parsed from strings here) or a JSON object with the same names. The image fields are not
 * part of these schemas: `image` (a file, or `image[]` several — the FIRST is used), `mask` (a file) in
 * multipart; in JSON, `image`/`mask` are an https URL, a data: URL or bare base64 (an array for `image`:
 * the first is used). Unknown fields are dropped.
 */

/** Default edit strength with `input_fidelity: "high"` (the output keeps more of the input). */
export const HIGH_FIDELITY_STRENGTH = 0.5;
/** Most input images an edit request may carry (OpenAI: up to 16); only the first is edited (see the route). */
export const MAX_EDIT_IMAGES = 16;

/** Default denoise strength of /v1/images/variations (a variation stays close to its source). */
export const DEFAULT_VARIATION_STRENGTH = 0.6;

/** The multipart / JSON names of the file fields. */
export const IMAGE_FILE_FIELDS = ['image', 'image[]', 'mask'] as const;

/** A form value: '' (an empty form field) means "not given". */
function blankToUndefined(value: unknown): unknown {
  return typeof value === 'string' && value.trim() === '' ? undefined : value;
}

/** A number field that may arrive as a form string ("7", "4.5"). */
function formNumber<T extends z.ZodType>(schema: T) {
  return z.preprocess((value) => {
    const v = blankToUndefined(value);
    return typeof v === 'string' ? Number(v) : v;
  }, schema);
}

/** A boolean field that may arrive as a form string ("true" / "false"). */
function formBoolean<T extends z.ZodType>(schema: T) {
  return z.preprocess((value) => {
    const v = blankToUndefined(value);
    if (v === 'true') return true;
    if (v === 'false') return false;
    return v;
  }, schema);
}

/** An optional string field where an empty form field means "not given". */
function formString<T extends z.ZodType>(schema: T) {
  return z.preprocess(blankToUndefined, schema);
}

/** Fields the edits and variations endpoints share (OpenAI names plus the GPUStack advanced fields). */
const commonFields = {
  model: formString(z.string().min(1).max(256).optional()),
  n: formNumber(z.number().int().min(1).max(MAX_IMAGES_PER_REQUEST).default(1)),
  /** "WxH" or "auto"; omitted/auto = the source image's size fitted to the model (see the edge route). */
  size: formString(SizeSchema.optional()).describe('WxH or auto; default: the source image size scaled to the model max_pixels, multiples of 8.'),
  response_format: formString(z.enum(['url', 'b64_json']).default('url')),
  seed: formString(publicSeedSchema({ allowRandom: true }).optional()),
  negative_prompt: formString(z.string().max(MAX_PROMPT_LENGTH).default('')),
  quality: formString(QualitySchema.optional()),
  output_format: formString(OutputFormatSchema.default('png')),
  output_compression: formNumber(OutputCompressionSchema.optional()),
  /** OpenAI `background`: transparent runs the deployment's matting model (png / webp with alpha); opaque / auto give RGB. */
  background: formString(BackgroundSchema.optional()),
  user: formString(z.string().max(256).optional()),
  sample_method: formString(z.string().min(1).optional()).describe(`Sampler; unset: the model's per-model default, else ${DEFAULT_SAMPLE_METHOD}.`),
  schedule_method: formString(z.string().min(1).optional()).describe(`Schedule; unset: the model's per-model default, else ${DEFAULT_SCHEDULE_METHOD}.`),
  sampling_steps: formNumber(z.number().int().min(1).max(MAX_SAMPLING_STEPS).optional()),
  cfg_scale: formNumber(z.number().min(0).max(50).optional()).describe(`CFG scale; unset: the model's per-model default, else ${DEFAULT_CFG_SCALE}.`),
  guidance: formNumber(z.number().min(0).max(50).optional()),
  /** Server-Sent Events as on /v1/images/generations: progress, partial images, completed images. */
  stream: formBoolean(z.boolean().default(false)),
  /** Live previews while streaming: faster (latent projection), normal (VAE decode), none. */
  preview: formString(PublicPreviewSchema.default('faster')),
  /** OpenAI: at most this many partial images, spread over the run (omitted: every preview). */
  partial_images: formNumber(z.number().int().min(0).max(MAX_PARTIAL_IMAGES).optional()),
  /** Lifetime of the returned links in seconds (checked against LINK_TTL_MAX_SECONDS by the edge). */
  link_ttl_seconds: formNumber(z.number().int().optional()),
  /** Add-ons (extension): loras, embeddings (JSON text in a form), vae (shared/src/api/addon-fields.ts). */
  ...formAddonFields,
};

/**
 * POST /v1/images/edits. With a mask: inpainting of the masked area (mask_mode 'alpha', OpenAI's
 * convention: transparent pixels are repainted; 'white': white pixels are repainted). Without: the
 * whole image is repainted, guided by it (img2img). `strength` (default 0.75, GPUStack's) is the
 * denoise strength in both cases.
 */
export const ImageEditRequestSchema = z.object({
  prompt: z.string().min(1, 'prompt must not be empty').max(MAX_PROMPT_LENGTH),
  mask_mode: formString(z.enum(['alpha', 'white']).default('alpha')).describe('alpha: transparent mask pixels are repainted (OpenAI); white: white pixels are repainted.'),
  strength: formNumber(z.number().min(0).max(1).optional()).describe(
    `Denoise strength (about steps × strength steps run); default ${DEFAULT_STRENGTH}, or ${HIGH_FIDELITY_STRENGTH} with input_fidelity "high".`,
  ),
  /** OpenAI `input_fidelity`: how closely the output keeps the input; sets the default strength. */
  input_fidelity: formString(z.enum(['high', 'low']).optional()).describe(
    `How closely the output follows the input image: "high" makes the default strength ${HIGH_FIDELITY_STRENGTH}, "low" (default) ${DEFAULT_STRENGTH}; an explicit strength wins.`,
  ),
  ...commonFields,
});
export type ImageEditRequest = z.infer<typeof ImageEditRequestSchema>;
export type ImageEditRequestInput = z.input<typeof ImageEditRequestSchema>;

/**
 * POST /v1/images/variations: img2img of the image. OpenAI sends no prompt; ours is optional
 * (default '': the model's unconditional guess, steered by the source image), and `strength`
 * defaults to 0.6 so the variation keeps the source's composition.
 */
export const ImageVariationRequestSchema = z.object({
  prompt: formString(z.string().max(MAX_PROMPT_LENGTH).default('')),
  strength: formNumber(z.number().min(0).max(1).default(DEFAULT_VARIATION_STRENGTH)).describe('Denoise strength; lower stays closer to the source.'),
  ...commonFields,
});
export type ImageVariationRequest = z.infer<typeof ImageVariationRequestSchema>;
export type ImageVariationRequestInput = z.input<typeof ImageVariationRequestSchema>;
