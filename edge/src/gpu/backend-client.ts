import { ErrorBodySchema } from '../../../shared/src/errors';
import {
  GenerationResultSchema,
  type GenerationJobInput,
  type GenerationResult,
} from '../../../shared/src/generation-job';
import { BackendModelListSchema, type BackendModel } from '../../../shared/src/api/models';
import { ApiError, backendUnavailable } from '../lib/api-error';

/** Options of {@link GpuBackendClient}. */
export interface GpuBackendClientOptions {
  /** Base URL without trailing slash, e.g. "http://127.0.0.1:8788". */
  baseUrl: string;
  /** GPU_SERVICE_TOKEN, sent as a Bearer token. */
  token: string;
  /** fetch to use (defaults to the global one, looked up at call time so tests can stub it). */
  fetch?: typeof fetch;
}

/** Statuses of the GPU service whose error body is passed to the client unchanged. */
const PASS_THROUGH_STATUSES = new Set([400, 404, 409, 413, 415, 422]);

/**
 * Client of the GPU service's internal API (contracts.md): GET /v1/models and POST /v1/jobs.
 * Every failure becomes an ApiError the edge can render:
 * - connection refused / network error → 502 `backend_unavailable`;
 * - 400/404/409/413/415/422 → the same status and error body (e.g. 404 `model_not_found`);
 * - 401/403 (our service token is wrong: a deployment fault, not the caller's) → 502 `backend_auth_failed`;
 * - 503 → 503 with the service's code (e.g. `queue_full`) and its Retry-After;
 * - other statuses or a body that does not match the contract → 502 `backend_error`.
 */
export class GpuBackendClient {
  private readonly baseUrl: string;
  private readonly token: string;
  private readonly fetchImpl: typeof fetch | undefined;

  constructor(options: GpuBackendClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.token = options.token;
    this.fetchImpl = options.fetch;
  }

  /** GET /v1/models → the models the service can run. @throws ApiError as described on the class. */
  async listModels(signal?: AbortSignal): Promise<BackendModel[]> {
    const response = await this.send('/v1/models', { method: 'GET', signal });
    const parsed = BackendModelListSchema.safeParse(await readJson(response));
    if (!parsed.success) throw backendUnavailable('The GPU service sent an unexpected model list.', 'backend_error');
    return parsed.data.data;
  }

  /**
   * POST /v1/jobs (synchronous JSON form): run a GenerationJob and return its images (base64) and
   * the resolved parameters. @throws ApiError as described on the class.
   */
  async runJob(job: GenerationJobInput, signal?: AbortSignal): Promise<GenerationResult> {
    const response = await this.send('/v1/jobs', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(job),
      signal,
    });
    const parsed = GenerationResultSchema.safeParse(await readJson(response));
    if (!parsed.success) throw backendUnavailable('The GPU service sent an unexpected job result.', 'backend_error');
    return parsed.data;
  }

  private async send(path: string, init: RequestInit): Promise<Response> {
    const fetchImpl = this.fetchImpl ?? fetch;
    let response: Response;
    try {
      response = await fetchImpl(`${this.baseUrl}${path}`, {
        ...init,
        headers: { ...(init.headers as Record<string, string> | undefined), authorization: `Bearer ${this.token}` },
      });
    } catch (cause) {
      console.error(`GPU service ${this.baseUrl}${path} unreachable`, cause);
      throw backendUnavailable('The GPU service is unreachable. Please retry shortly.');
    }
    if (response.ok) return response;
    throw await backendError(response);
  }
}

/** Parse a JSON body, or null when it is not JSON. */
async function readJson(response: Response): Promise<unknown> {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

/** Map a non-2xx GPU service response to the ApiError the edge answers with. */
async function backendError(response: Response): Promise<ApiError> {
  const body = ErrorBodySchema.safeParse(await readJson(response));
  const error = body.success ? body.data.error : undefined;
  if (PASS_THROUGH_STATUSES.has(response.status) && error) {
    return new ApiError(response.status as 400, error.type, error.code, error.message, error.param);
  }
  if (response.status === 503) {
    const retryAfter = response.headers.get('retry-after') ?? '5';
    return new ApiError(
      503,
      'server_error',
      error?.code ?? 'backend_busy',
      error?.message ?? 'The GPU service is busy. Please retry later.',
      null,
      { 'retry-after': retryAfter },
    );
  }
  if (response.status === 401 || response.status === 403) {
    console.error('GPU service refused the service token (check GPU_SERVICE_TOKEN)');
    return backendUnavailable('The edge could not authenticate to the GPU service.', 'backend_auth_failed');
  }
  console.error(`GPU service answered ${response.status}`, error);
  return backendUnavailable(`The GPU service failed (status ${response.status}).`, 'backend_error');
}
