import { z } from 'zod';
import { MAX_ADDONS } from '../generation-job';

/**
 * The public add-on fields (issue 13): LoRAs, textual-inversion embeddings and a VAE override by the ids the
 * listings give (GET /v1/models, GET /v3/model?filter.types=lora|textualinversion|vae). Every API style uses the
 * same item shapes as the async API's seed document, so one `loras` array can be copied between styles:
 *
 * - `loras: [{model_name, strength}]`, at most 5 (prompt `<lora:name:strength>` tags count towards the 5);
 *   strength −4..4, default 1 (W += strength · alpha/rank · up·down);
 * - `embeddings: [{model_name}]`, at most 5: makes those embeddings' names usable in the prompts;
 * - the VAE: `sd_vae` in the async API (Novita's name), `vae` in the OpenAI-style and /v1/img2img bodies.
 *
 * Multipart bodies (/v1/images/edits, /variations) carry `loras` / `embeddings` as a JSON text field.
 */

/** Strength range of a LoRA (the GPU service's GenerationJob range). */
export const LORA_MIN_STRENGTH = -4;
export const LORA_MAX_STRENGTH = 4;

/** One `loras[i]`: a LoRA id and its strength. */
export const PublicLoraSchema = z.object({
  model_name: z.string().min(1).max(256),
  strength: z.number().min(LORA_MIN_STRENGTH).max(LORA_MAX_STRENGTH).default(1),
});
export type PublicLora = z.infer<typeof PublicLoraSchema>;

/** One `embeddings[i]`: an embedding id. */
export const PublicEmbeddingSchema = z.object({ model_name: z.string().min(1).max(256) });
export type PublicEmbedding = z.infer<typeof PublicEmbeddingSchema>;

const LORA_LIST = z.array(PublicLoraSchema).max(MAX_ADDONS);
const EMBEDDING_LIST = z.array(PublicEmbeddingSchema).max(MAX_ADDONS);
const VAE_ID = z.string().min(1).max(256);
const DESCRIPTIONS = {
  loras: 'LoRAs by id: [{model_name, strength}] (at most 5 with the prompt\'s <lora:name:strength> tags; strength −4..4, default 1).',
  embeddings: 'Textual-inversion embeddings by id: [{model_name}] (at most 5); their names in the prompts are replaced by their vectors.',
  vae: 'A standalone VAE (an id of GET /v1/models with kind "vae") replacing the checkpoint\'s for decode and encode.',
} as const;

/** The add-on fields of the JSON bodies (/v1/images/generations, /v1/img2img), spread into their schemas. */
export const openAiAddonFields = {
  loras: LORA_LIST.optional().describe(DESCRIPTIONS.loras),
  embeddings: EMBEDDING_LIST.optional().describe(DESCRIPTIONS.embeddings),
  vae: VAE_ID.optional().describe(DESCRIPTIONS.vae),
};

/** A form text field holding JSON is parsed first ('' = not given); anything else is left to the schema. */
function jsonTextField(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  if (value.trim() === '') return undefined;
  try {
    return JSON.parse(value) as unknown;
  } catch {
    return value;
  }
}

/** The same fields for bodies that may be multipart forms (/v1/images/edits, /variations): lists as JSON text. */
export const formAddonFields = {
  loras: z.preprocess(jsonTextField, LORA_LIST.optional()).describe(`${DESCRIPTIONS.loras} In a multipart form: a JSON text field.`),
  embeddings: z.preprocess(jsonTextField, EMBEDDING_LIST.optional()).describe(`${DESCRIPTIONS.embeddings} In a multipart form: a JSON text field.`),
  vae: z.preprocess((v) => (typeof v === 'string' && v.trim() === '' ? undefined : v), VAE_ID.optional()).describe(DESCRIPTIONS.vae),
};

/** The add-on fields of any style, as the edge reads them. */
export interface PublicAddonFields {
  loras?: PublicLora[];
  embeddings?: PublicEmbedding[];
  vae?: string;
}
