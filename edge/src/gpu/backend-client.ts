import { z } from 'zod';
import { ErrorBodySchema } from '@image-api/shared/errors';
import {
  GenerationResultSchema,
  type GenerationJobInput,
  type GenerationResult,
} from '@image-api/shared/generation-job';
import { BackendModelListSchema, type BackendModel, type HfDownloads } from '@image-api/shared/api/models';
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

/** An open Server-Sent Events stream of one job, and the backend that serves it. */
export interface GpuJobStream {
  /** Base URL of the GPU service running the job (store it to reattach or cancel later). */
  backendUrl: string;
  /** The 200 response; its body is `text/event-stream` (queued/started/step/preview/done/error events with ids). */
  response: Response;
}

/** GET /v1/jobs/:id of the GPU service. `result`/`error` are null until the job ends. */
export const GpuJobStatusSchema = z.object({
  id: z.string(),
  status: z.string(),
  result: GenerationResultSchema.nullable(),
  error: ErrorBodySchema.shape.error.nullable(),
});
export type GpuJobStatus = z.infer<typeof GpuJobStatusSchema>;

/** DELETE /v1/jobs/:id of the GPU service: `cancelled` is false when the job had already ended. */
export const GpuCancelResultSchema = z.object({ id: z.string(), cancelled: z.boolean(), status: z.string() });
export type GpuCancelResult = z.infer<typeof GpuCancelResultSchema>;

/** How a backend answered its readiness probe. */
export interface BackendProbe {
  /** Whether it can take work now (GET /readyz 200, or GET /healthz 200 on services without /readyz). */
  ready: boolean;
  /** Jobs waiting or running there when the probe says so (a `queue_depth`/`queued` number), else null. */
  queueDepth: number | null;
  /** Why it is not ready (from the probe body or the failure), for logs. */
  reason?: string;
}

/** Where to find an existing job: the backend it was submitted to, when the caller knows it. */
export interface JobLocation {
  /** Base URL recorded from {@link GpuJobStream.backendUrl} (e.g. the task row's `backend`). */
  backendUrl?: string;
  signal?: AbortSignal;
}

/**
 * What the edge needs from "the GPU service", whether one backend ({@link GpuBackendClient}) or
 * several with failover (GpuBackendPool in backend-pool.ts). Type your code against this
 * interface so either can be passed. Every method throws ApiError (see GpuBackendClient).
 */
export interface GpuClient {
  /** GET /v1/models. */
  listModels(signal?: AbortSignal): Promise<BackendModelArray>;
  /** POST /v1/jobs, JSON: run the job to the end and return its result. */
  runJob(job: GenerationJobInput, signal?: AbortSignal): Promise<GenerationResult>;
  /** POST /v1/jobs with `Accept: text/event-stream`: submit and follow the job's events. */
  streamJob(job: GenerationJobInput, signal?: AbortSignal): Promise<GpuJobStream>;
  /** GET /v1/jobs/:id/events, resuming after `lastEventId` (the `id:` of the last event seen). */
  jobEvents(jobId: string, options?: JobLocation & { lastEventId?: string }): Promise<GpuJobStream>;
  /** GET /v1/jobs/:id → status, or null when no backend knows the job. */
  getJob(jobId: string, options?: JobLocation): Promise<GpuJobStatus | null>;
  /** DELETE /v1/jobs/:id → the outcome, or null when no backend knows the job. */
  cancelJob(jobId: string, options?: JobLocation): Promise<GpuCancelResult | null>;
}

/** The GPU service's model list, carrying its hf.co download rules when it reports them (`hf_downloads`). */
export type BackendModelArray = BackendModel[] & { hf_downloads?: HfDownloads };

/** Statuses of the GPU service whose error body is passed to the client unchanged. */
const PASS_THROUGH_STATUSES = new Set([400, 404, 409, 413, 415, 422]);

/**
 * Client of ONE GPU service's internal API (docs/architecture.md). Every failure becomes an ApiError the
 * edge can render:
 * - connection refused / network error → 502 `backend_unavailable`;
 * - 400/404/409/413/415/422 → the same status and error body (e.g. 404 `model_not_found`);
 * - 401/403 (our service token is wrong: a deployment fault, not the caller's) → 502 `backend_auth_failed`;
 *   except 403 `model_download_forbidden` (an hf.co repository outside HF_ALLOWED_REPOS), passed through;
 * - 503 → 503 with the service's code (e.g. `queue_full`) and its Retry-After;
 * - other statuses or a body that does not match the contract → 502 `backend_error`.
 */
export class GpuBackendClient implements GpuClient {
  /** The service's base URL (no trailing slash). */
  readonly baseUrl: string;
  private readonly token: string;
  private readonly fetchImpl: typeof fetch | undefined;

  constructor(options: GpuBackendClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.token = options.token;
    this.fetchImpl = options.fetch;
  }

  /** GET /v1/models → the models the service can run. @throws ApiError as described on the class. */
  async listModels(signal?: AbortSignal): Promise<BackendModelArray> {
    const response = await this.send('/v1/models', { method: 'GET', signal });
    const parsed = BackendModelListSchema.safeParse(await readJson(response));
    if (!parsed.success) throw backendUnavailable('The GPU service sent an unexpected model list.', 'backend_error');
    const models: BackendModelArray = parsed.data.data;
    if (parsed.data.hf_downloads) models.hf_downloads = parsed.data.hf_downloads;
    return models;
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

  /**
   * POST /v1/jobs with `Accept: text/event-stream`. Resolves once the service accepted the job
   * (admission errors such as 404 `model_not_found` or 503 `queue_full` arrive as a status before
   * the stream, and are thrown). The caller reads and cancels `response.body`.
   * @throws ApiError as described on the class; 502 `backend_error` when the 200 is not an event stream.
   */
  async streamJob(job: GenerationJobInput, signal?: AbortSignal): Promise<GpuJobStream> {
    const response = await this.send('/v1/jobs', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify(job),
      signal,
    });
    return { backendUrl: this.baseUrl, response: requireEventStream(response) };
  }

  /**
   * GET /v1/jobs/:id/events with Last-Event-ID: the events after `lastEventId` (all when absent),
   * then live ones until the job ends. `backendUrl` is ignored (this client is one backend).
   * @throws ApiError 404 `job_not_found` (passed through) or as described on the class.
   */
  async jobEvents(jobId: string, options: JobLocation & { lastEventId?: string } = {}): Promise<GpuJobStream> {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (options.lastEventId !== undefined) headers['last-event-id'] = options.lastEventId;
    const response = await this.send(`/v1/jobs/${encodeURIComponent(jobId)}/events`, { method: 'GET', headers, signal: options.signal });
    return { backendUrl: this.baseUrl, response: requireEventStream(response) };
  }

  /** GET /v1/jobs/:id → status, or null when the service does not know the job (404). @throws ApiError otherwise. */
  async getJob(jobId: string, options: JobLocation = {}): Promise<GpuJobStatus | null> {
    const response = await this.sendAllowingNotFound(`/v1/jobs/${encodeURIComponent(jobId)}`, { method: 'GET', signal: options.signal });
    if (!response) return null;
    const parsed = GpuJobStatusSchema.safeParse(await readJson(response));
    if (!parsed.success) throw backendUnavailable('The GPU service sent an unexpected job status.', 'backend_error');
    return parsed.data;
  }

  /** DELETE /v1/jobs/:id → outcome, or null when the service does not know the job (404). @throws ApiError otherwise. */
  async cancelJob(jobId: string, options: JobLocation = {}): Promise<GpuCancelResult | null> {
    const response = await this.sendAllowingNotFound(`/v1/jobs/${encodeURIComponent(jobId)}`, { method: 'DELETE', signal: options.signal });
    if (!response) return null;
    const parsed = GpuCancelResultSchema.safeParse(await readJson(response));
    if (!parsed.success) throw backendUnavailable('The GPU service sent an unexpected cancel answer.', 'backend_error');
    return parsed.data;
  }

  /**
   * Readiness probe: GET /readyz (200 ready; 503 not ready, with the reason in the error body;
   * either way `queue_depth` and `running`); a service without /readyz (404) is probed with GET
   * /healthz instead. Never throws: an unreachable service is `{ready: false}`.
   */
  async probe(signal?: AbortSignal): Promise<BackendProbe> {
    try {
      let response = await this.rawFetch('/readyz', { method: 'GET', signal });
      if (response.status === 404) {
        await response.body?.cancel();
        response = await this.rawFetch('/healthz', { method: 'GET', signal });
      }
      const body = await readJson(response);
      // /readyz explains a 503 in the shared error body (error.code, error.message); also accept `reason`.
      const parsed = ErrorBodySchema.safeParse(body);
      const reason = parsed.success
        ? `${parsed.data.error.code}: ${parsed.data.error.message}`
        : typeof (body as { reason?: unknown } | null)?.reason === 'string'
          ? (body as { reason: string }).reason
          : undefined;
      return {
        ready: response.ok,
        queueDepth: queueDepthOf(body),
        reason: response.ok ? undefined : (reason ?? `status ${response.status}`),
      };
    } catch (cause) {
      return { ready: false, queueDepth: null, reason: `unreachable: ${String(cause)}` };
    }
  }

  private rawFetch(path: string, init: RequestInit): Promise<Response> {
    const fetchImpl = this.fetchImpl ?? fetch;
    return fetchImpl(`${this.baseUrl}${path}`, {
      ...init,
      headers: { ...(init.headers as Record<string, string> | undefined), authorization: `Bearer ${this.token}` },
    });
  }

  private async send(path: string, init: RequestInit): Promise<Response> {
    let response: Response;
    try {
      response = await this.rawFetch(path, init);
    } catch (cause) {
      if (init.signal?.aborted) throw cause;
      console.error(`GPU service ${this.baseUrl}${path} unreachable`, cause);
      throw backendUnavailable('The GPU service is unreachable. Please retry shortly.');
    }
    if (response.ok) return response;
    throw await backendError(response);
  }

  private async sendAllowingNotFound(path: string, init: RequestInit): Promise<Response | null> {
    try {
      return await this.send(path, init);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return null;
      throw error;
    }
  }
}

/** A 200 that is not an event stream breaks the contract. */
function requireEventStream(response: Response): Response {
  if (!(response.headers.get('content-type') ?? '').includes('text/event-stream')) {
    void response.body?.cancel();
    throw backendUnavailable('The GPU service did not answer with an event stream.', 'backend_error');
  }
  return response;
}

/**
 * Jobs waiting plus running at a backend, from its probe body: the GPU service's /readyz and
 * /healthz report `queue_depth` (waiting) and `running`; `queued` is accepted for `queue_depth`.
 * Null when the body has none of them.
 */
function queueDepthOf(body: unknown): number | null {
  if (body === null || typeof body !== 'object') return null;
  const record = body as Record<string, unknown>;
  const number = (value: unknown) => (typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : null);
  const waiting = number(record.queue_depth) ?? number(record.queued);
  const running = number(record.running);
  if (waiting !== null || running !== null) return (waiting ?? 0) + (running ?? 0);
  const queue = record.queue;
  if (queue && typeof queue === 'object') return queueDepthOf(queue);
  return null;
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
  // 403 is the caller's only for a download the GPU service's HF_ALLOWED_REPOS refuses (else: our token).
  const forbiddenDownload = response.status === 403 && error?.code === 'model_download_forbidden';
  if ((PASS_THROUGH_STATUSES.has(response.status) || forbiddenDownload) && error) {
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
