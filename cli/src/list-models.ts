import { ApiError, apiErrorFromResponse } from './api-error';

/** One entry of GET /v1/models as the CLI uses it (contracts.md; OpenAI list shape + extensions). */
export interface ModelSummary {
  id: string;
  /** [width, height] in pixels, when the server reports it. */
  nativeSize: [number, number] | null;
  capabilities: string[];
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
  return body.data
    .filter((entry): entry is Record<string, unknown> => typeof entry === 'object' && entry !== null)
    .filter((entry) => typeof entry.id === 'string')
    .map((entry) => ({
      id: entry.id as string,
      nativeSize: isSize(entry.native_size) ? entry.native_size : null,
      capabilities: Array.isArray(entry.capabilities) ? entry.capabilities.filter((c) => typeof c === 'string') : [],
    }));
}

function isSize(value: unknown): value is [number, number] {
  return Array.isArray(value) && value.length === 2 && value.every((n) => typeof n === 'number');
}
