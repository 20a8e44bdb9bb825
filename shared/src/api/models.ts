import { z } from 'zod';

export const ModelKindSchema = z.enum(['checkpoint', 'lora', 'vae', 'textualinversion']);
export const ModelCapabilitySchema = z.enum(['txt2img', 'img2img', 'inpaint']);

/**
 * One entry of the GPU service's GET /v1/models (contracts.md). `native_size` is [width, height] in pixels;
 * it and `max_pixels` are 0 for entries that cannot generate on their own (LoRA, VAE, embeddings) and for
 * broken folders (which carry `error`).
 */
export const BackendModelSchema = z.object({
  id: z.string(),
  kind: ModelKindSchema,
  capabilities: z.array(ModelCapabilitySchema),
  native_size: z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]),
  /** Largest width × height the model accepts, in pixels. */
  max_pixels: z.number().int().nonnegative(),
  loaded: z.boolean(),
  error: z.string().optional(),
});
export type BackendModel = z.infer<typeof BackendModelSchema>;

export const BackendModelListSchema = z.object({ data: z.array(BackendModelSchema) });
export type BackendModelList = z.infer<typeof BackendModelListSchema>;

/**
 * One model of the public GET /v1/models: OpenAI's model object ({id, object: "model", created,
 * owned_by}) plus our kind, capabilities, native_size and max_pixels.
 */
export const PublicModelSchema = z.object({
  id: z.string(),
  object: z.literal('model'),
  created: z.number().int(),
  owned_by: z.string(),
  kind: ModelKindSchema,
  capabilities: z.array(ModelCapabilitySchema),
  native_size: z.tuple([z.number().int(), z.number().int()]),
  max_pixels: z.number().int(),
});
export type PublicModel = z.infer<typeof PublicModelSchema>;

export const PublicModelListSchema = z.object({ object: z.literal('list'), data: z.array(PublicModelSchema) });
export type PublicModelList = z.infer<typeof PublicModelListSchema>;
