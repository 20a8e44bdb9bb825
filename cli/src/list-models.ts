import { PublicModelSchema } from '@image-api/shared/api/models';
import { ApiError, apiErrorFromResponse } from './api-error';

/**
 * The part of a public model entry the CLI reads, from the shared schema. Lenient on purpose:
 * an entry missing optional extensions is still listed, one without an id is skipped.
 */
const ModelEntrySchema = PublicModelSchema.pick({ id: true, native_size: true, capabilities: true, kind: true, architecture: true }).partial({
  native_size: true,
  capabilities: true,
  kind: true,
});

/** One entry of GET /v1/models as the CLI uses it (OpenAI list shape + extensions). */
export interface ModelSummary {
  id: string;
  /** [width, height] in pixels, when the server reports it. */
  nativeSize: [number, number] | null;
  capabilities: string[];
  /** checkpoint, lora, vae or textualinversion (checkpoint when the server does not say). */
  kind: string;
  /** The base architecture the server detected ("Stable Diffusion 1.x"), when it reports one. */
  architecture: string | null;
}

/**
 * GET {baseUrl}/v1/models with the Bearer key and summarise the entries.
 * @throws ApiError for an error answer or an unreachable server (exit codes as for generation)
 */
export async function listModels(
  baseUrl: string,
  apiKey: string,
  options: { fetch?: typeof fetch; signal?: AbortSignal } = {},
): Promise<ModelSummary[]> {
  const doFetch = options.fetch ?? fetch;
  let response: Response;
  try {
    response = await doFetch(`${baseUrl}/v1/models`, {
      headers: { authorization: `Bearer ${apiKey}`, accept: 'application/json' },
      signal: options.signal,
    });
  } catch (error) {
    if (error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError')) throw error;
    throw new ApiError(`cannot reach the API at ${baseUrl}; is it running? \`npm start\` starts one`, {
      status: null,
      network: true,
    });
  }
  if (!response.ok) throw await apiErrorFromResponse(response);
  const body = (await response.json().catch(() => null)) as { data?: unknown } | null;
  if (!body || !Array.isArray(body.data)) {
    throw new ApiError('GET /v1/models answered without a "data" list', { status: response.status });
  }
  const models: ModelSummary[] = [];
  for (const entry of body.data) {
    const parsed = ModelEntrySchema.safeParse(entry);
    if (!parsed.success) continue;
    models.push({
      id: parsed.data.id,
      nativeSize: parsed.data.native_size ?? null,
      capabilities: parsed.data.capabilities ?? [],
      kind: parsed.data.kind ?? 'checkpoint',
      architecture: parsed.data.architecture ?? null,
    });
  }
  return models;
}
