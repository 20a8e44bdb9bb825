/**
 * A request's add-ons (LoRAs, textual-inversion embeddings, a VAE override; shared/src/api/addon-fields.ts) turned
 * into the GenerationJob's `loras` / `embeddings` / `vae`, checked against the GPU service's listing before
 * anything is charged or stored, so an unknown or unusable name is a 400 naming the public field. The prompt's
 * AUTOMATIC1111 tags (`<lora:name:0.8>`) are checked the same way here; the prompt goes to the GPU service as
 * written, which takes the tags out (gpu-service/src/addons/job-addons.ts) — one parser, shared/src/prompt-addons.ts.
 *
 * What only the GPU service can tell (a LoRA whose keys match no layer of the checkpoint, an embedding or VAE of
 * another architecture, an ONNX export that takes no add-ons) comes back as its error naming the job field
 * (`loras[1].name`, `vae`, `prompt`); {@link publicAddonParam} renames that to the request's field.
 */
import type { PublicAddonFields } from '@image-api/shared/api/addon-fields';
import { LORA_MAX_STRENGTH, LORA_MIN_STRENGTH } from '@image-api/shared/api/addon-fields';
import type { BackendModel } from '@image-api/shared/api/models';
import { MAX_ADDONS, type GenerationJobInput } from '@image-api/shared/generation-job';
import { extractPromptLoras, PromptAddonError, type PromptLora } from '@image-api/shared/prompt-addons';
import type { GpuClient } from '../gpu/backend-client';
import type { ModelCatalog } from '../gpu/model-catalog';
import { invalidParameter } from '../lib/api-error';

/** How one API style names the add-on fields in its errors. */
export interface AddonFieldStyle {
  /** Prefix of every field path: '' (OpenAI-style, /v1/img2img) or 'request.' (the async API's body). */
  prefix: string;
  /** The VAE field's name: 'vae', or the async API's 'sd_vae'. */
  vaeField: string;
  /** Where a client lists the add-ons of a kind (named in "no such add-on" errors). */
  listing: (kind: AddonKind) => string;
}

type AddonKind = 'lora' | 'textualinversion' | 'vae';

/** OpenAI-style routes and /v1/img2img: `loras.1.model_name`, `vae`, `prompt`. */
export const OPENAI_ADDON_STYLE: AddonFieldStyle = { prefix: '', vaeField: 'vae', listing: (kind) => `GET /v1/models (kind "${kind}")` };
/** The async API: `request.loras.1.model_name`, `request.sd_vae`, `request.prompt`. */
export const ASYNC_ADDON_STYLE: AddonFieldStyle = { prefix: 'request.', vaeField: 'sd_vae', listing: (kind) => `GET /v3/model?filter.types=${kind}` };

const KIND_WORD: Record<AddonKind, string> = { lora: 'LoRA', textualinversion: 'textual-inversion embedding', vae: 'VAE' };

/** The job fields a request's add-ons become (only those it uses). */
export type JobAddonFields = Pick<GenerationJobInput, 'loras' | 'embeddings' | 'vae'>;

/** The prompt's `<lora:…>` tags. @throws ApiError 400 naming the prompt field for a malformed tag. */
function promptLoras(prompt: string, style: AddonFieldStyle): PromptLora[] {
  try {
    return extractPromptLoras(prompt).loras;
  } catch (error) {
    if (error instanceof PromptAddonError) throw invalidParameter(`${style.prefix}prompt`, error.message);
    throw error;
  }
}

/** Whether a request names any add-on (fields or prompt tags), i.e. whether the listing must be consulted. */
export function requestNamesAddons(fields: PublicAddonFields, prompt: string, style: AddonFieldStyle): boolean {
  return (fields.loras?.length ?? 0) > 0 || (fields.embeddings?.length ?? 0) > 0 || fields.vae !== undefined || promptLoras(prompt, style).length > 0;
}

/** Every add-on a request names, with the public field that names it. */
function namedAddons(fields: PublicAddonFields, prompt: string, style: AddonFieldStyle): Array<{ kind: AddonKind; id: string; param: string }> {
  const p = style.prefix;
  return [
    ...(fields.loras ?? []).map((l, i) => ({ kind: 'lora' as const, id: l.model_name, param: `${p}loras.${i}.model_name` })),
    ...promptLoras(prompt, style).map((t) => ({ kind: 'lora' as const, id: t.name, param: `${p}prompt` })),
    ...(fields.embeddings ?? []).map((e, i) => ({ kind: 'textualinversion' as const, id: e.model_name, param: `${p}embeddings.${i}.model_name` })),
    ...(fields.vae !== undefined ? [{ kind: 'vae' as const, id: fields.vae, param: `${p}${style.vaeField}` }] : []),
  ];
}

/** Whether `catalog` lists every add-on the request names, usable (for ModelCatalog.listHaving). */
export function listsEveryAddon(fields: PublicAddonFields, prompt: string, style: AddonFieldStyle, catalog: readonly BackendModel[]): boolean {
  return namedAddons(fields, prompt, style).every((a) => catalog.some((m) => m.kind === a.kind && m.id === a.id && !m.error));
}

/**
 * Check a request's add-ons against the GPU service's listing and give the job fields.
 * @param fields the request's `loras` / `embeddings` / `vae` (`sd_vae`), already validated by their schemas.
 * @param prompt the positive prompt, whose `<lora:name:strength>` tags count towards the 5 LoRAs.
 * @param catalog the GPU service's models (GET /v1/models), add-ons included.
 * @returns `loras` (`{name, strength}`), `embeddings` (`{name}`), `vae` for the job; the prompt is left as written.
 * @throws ApiError 400 naming the public field: `model_not_found` for an id the listing does not have (or has as
 *         another kind), `invalid_parameter` for one listed with an `error` (pickle file, unknown layout…, with
 *         that reason), a malformed or out-of-range prompt tag (`prompt`), more than 5 LoRAs counting the tags
 *         (`loras`).
 */
export function resolveRequestAddons(fields: PublicAddonFields, prompt: string, style: AddonFieldStyle, catalog: readonly BackendModel[]): JobAddonFields {
  const p = style.prefix;
  const tags = promptLoras(prompt, style);
  for (const t of tags) {
    if (t.strength < LORA_MIN_STRENGTH || t.strength > LORA_MAX_STRENGTH) {
      throw invalidParameter(`${p}prompt`, `<lora:${t.name}:${t.strength}>: the strength must be within ${LORA_MIN_STRENGTH}..${LORA_MAX_STRENGTH}.`);
    }
  }
  const count = (fields.loras?.length ?? 0) + tags.length;
  if (count > MAX_ADDONS) {
    throw invalidParameter(`${p}loras`, `At most ${MAX_ADDONS} LoRAs per request: ${count} given (${fields.loras?.length ?? 0} in loras, ${tags.length} as <lora:…> tags in the prompt).`);
  }
  for (const a of namedAddons(fields, prompt, style)) {
    const entry = catalog.find((m) => m.kind === a.kind && m.id === a.id);
    if (!entry) {
      const available = catalog.filter((m) => m.kind === a.kind && !m.error).map((m) => m.id);
      throw invalidParameter(
        a.param,
        `No ${KIND_WORD[a.kind]} named "${a.id}" is available${available.length ? ` (available: ${available.slice(0, 20).join(', ')})` : ''}. List them with ${style.listing(a.kind)}.`,
        'model_not_found',
      );
    }
    if (entry.error) throw invalidParameter(a.param, `The ${KIND_WORD[a.kind]} "${a.id}" cannot be used: ${entry.error}`);
  }
  const job: JobAddonFields = {};
  if (fields.loras?.length) job.loras = fields.loras.map((l) => ({ name: l.model_name, strength: l.strength }));
  if (fields.embeddings?.length) job.embeddings = fields.embeddings.map((e) => ({ name: e.model_name }));
  if (fields.vae !== undefined) job.vae = fields.vae;
  return job;
}

/**
 * The request field behind a GPU service error's `param` for the job fields the add-ons became: `loras[i].name`
 * → `loras.i.model_name`, `embeddings[i].name` → `embeddings.i.model_name`, `vae` → the style's VAE field,
 * `prompt` (a tag) and `loras` (the count) → themselves; all with the style's prefix. Other params pass unchanged.
 */
export function publicAddonParam(param: string | null, style: AddonFieldStyle): string | null {
  if (param === null) return null;
  const p = style.prefix;
  const list = /^(loras|embeddings)\[(\d+)\]\.name$/.exec(param);
  if (list) return `${p}${list[1]}.${list[2]}.model_name`;
  if (param === 'vae') return `${p}${style.vaeField}`;
  if (param === 'prompt' || param === 'loras' || param === 'embeddings') return `${p}${param}`;
  return param;
}

/**
 * {@link resolveRequestAddons} against the listing of `pool` (fetched again once when the cached one lacks a named
 * add-on); no listing is read for a request without add-ons.
 * @throws ApiError as resolveRequestAddons, and the listing's own errors (502/503 from the GPU service).
 */
export async function requestAddonJobFields(
  catalog: Pick<ModelCatalog, 'listHaving'>,
  pool: Pick<GpuClient, 'listModels'> & { key: string },
  fields: PublicAddonFields,
  prompt: string,
  style: AddonFieldStyle,
): Promise<JobAddonFields> {
  if (!requestNamesAddons(fields, prompt, style)) return {};
  const models = await catalog.listHaving(pool, pool.key, (listed) => listsEveryAddon(fields, prompt, style, listed));
  return resolveRequestAddons(fields, prompt, style, models);
}
