/**
 * A job's add-ons, resolved before it is queued: LoRAs from `loras` and the prompt's `<lora:name:strength>` tags,
 * textual-inversion embeddings, a VAE override — each found in MODELS_DIR by its id, so an unknown or unusable
 * one is refused at submit with the field that names it (never discovered half-way through a run).
 */
import { extractPromptLoras, PromptAddonError } from '@image-api/shared/prompt-addons';
import { MAX_ADDONS, type GenerationJob } from '@image-api/shared/generation-job';
import { ServiceError } from '../lib/errors';
import type { AddonCatalog, AddonKind } from './addon-catalog';

/** An add-on file a job uses. */
export interface AddonRef {
  id: string;
  path: string;
  /** The job field that named it (`loras[1].name`, `prompt` for a `<lora:…>` tag, `vae`), for errors. */
  param: string;
}

/** What a job's add-ons resolved to. */
export interface ResolvedAddons {
  loras: Array<AddonRef & { strength: number }>;
  embeddings: AddonRef[];
  vae?: AddonRef;
}

/** No add-ons. */
export const NO_ADDONS: ResolvedAddons = { loras: [], embeddings: [] };

/** Whether a job uses any add-on. */
export function hasAddons(a: ResolvedAddons): boolean {
  return a.loras.length > 0 || a.embeddings.length > 0 || a.vae !== undefined;
}

/** A stable key of an add-on set (ids and strengths): equal keys share a model variant and a batch. */
export function addonsKey(a: ResolvedAddons): string {
  if (!hasAddons(a)) return '';
  return JSON.stringify([a.loras.map((l) => [l.id, l.strength]), a.embeddings.map((e) => e.id).sort(), a.vae?.id ?? null]);
}

const KIND_WORD: Record<AddonKind, string> = { lora: 'LoRA', textualinversion: 'embedding', vae: 'VAE' };

/**
 * Take the prompt's LoRA tags into the job and find every add-on.
 * @returns the job with the tags removed from its prompt and added to `loras`, and the resolved files.
 * @throws ServiceError 400 naming the field for a malformed tag, too many add-ons or an unusable file (with its
 *         reason); 404 `addon_not_found` naming the field for an unknown id, listing what is available.
 */
export async function resolveJobAddons(job: GenerationJob, catalog: AddonCatalog): Promise<{ job: GenerationJob; addons: ResolvedAddons }> {
  let prompt = job.prompt;
  let tagged: Array<{ name: string; strength: number }> = [];
  try {
    ({ prompt, loras: tagged } = extractPromptLoras(job.prompt));
  } catch (err) {
    if (err instanceof PromptAddonError) throw new ServiceError(400, 'invalid_request', `prompt: ${err.message}`, 'prompt');
    throw err;
  }
  for (const t of tagged) {
    if (t.strength < -4 || t.strength > 4) throw new ServiceError(400, 'invalid_request', `prompt: <lora:${t.name}:${t.strength}>: the strength must be within -4..4`, 'prompt');
  }
  const loras = [...job.loras.map((l, i) => ({ ...l, param: `loras[${i}].name` })), ...tagged.map((t) => ({ ...t, param: 'prompt' }))];
  if (loras.length > MAX_ADDONS) throw new ServiceError(400, 'invalid_request', `at most ${MAX_ADDONS} LoRAs per job (${loras.length} given, prompt tags included)`, 'loras');
  if (job.loras.length === 0 && tagged.length === 0 && job.embeddings.length === 0 && !job.vae) return { job, addons: NO_ADDONS };

  const find = async (kind: AddonKind, id: string, param: string): Promise<AddonRef> => {
    const entry = await catalog.find(kind, id);
    if (!entry) {
      const available = (await catalog.list(kind)).filter((a) => !a.error).map((a) => a.id);
      throw new ServiceError(404, 'addon_not_found', `No ${KIND_WORD[kind]} named "${id}" in MODELS_DIR/${kind === 'lora' ? 'loras' : kind === 'vae' ? 'vae' : 'embeddings'}. Available: ${available.join(', ') || 'none'}.`, param);
    }
    if (entry.error) throw new ServiceError(400, 'invalid_request', `${KIND_WORD[kind]} "${id}" cannot be used: ${entry.error}`, param);
    return { id, path: entry.path, param };
  };
  const addons: ResolvedAddons = {
    loras: await Promise.all(loras.map(async (l) => ({ ...(await find('lora', l.name, l.param)), strength: l.strength }))),
    embeddings: await Promise.all(job.embeddings.map((e, i) => find('textualinversion', e.name, `embeddings[${i}].name`))),
    vae: job.vae ? await find('vae', job.vae, 'vae') : undefined,
  };
  return { job: { ...job, prompt, loras: loras.map(({ name, strength }) => ({ name, strength })) }, addons };
}
