/**
 * The GPU service's error catalogue (Fastify habit: one catalogue, one error handler). Each error has a
 * stable code, an HTTP status, an error type and a message; 4xx are the caller's fault, 5xx ours.
 */
import type { ErrorType } from '@image-api/shared/errors';

export class ServiceError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ServiceError';
  }

  get type(): ErrorType {
    if (this.status === 401) return 'authentication_error';
    if (this.status === 403) return 'permission_error';
    if (this.status === 404) return 'not_found_error';
    if (this.status === 429) return 'rate_limit_error';
    return this.status < 500 ? 'invalid_request_error' : 'server_error';
  }
}

export const errors = {
  unauthorized: () => new ServiceError(401, 'invalid_service_token', 'A valid service token is required (Authorization: Bearer <GPU_SERVICE_TOKEN>).'),
  invalidRequest: (param: string | null, message: string) => new ServiceError(400, 'invalid_request', message, param),
  modelNotFound: (model: string, available: string[]) =>
    new ServiceError(404, 'model_not_found', `Model "${model}" is not served here. Available: ${available.join(', ') || 'none'}.`, 'model'),
  modelBroken: (model: string, reason: string) => new ServiceError(503, 'model_unavailable', `Model "${model}" cannot be loaded: ${reason}`, 'model'),
  jobNotFound: (id: string) => new ServiceError(404, 'job_not_found', `No job with id "${id}".`, 'id'),
  queueFull: (retryAfterSeconds: number) =>
    new ServiceError(503, 'queue_full', 'The job queue is full; retry later.', null, { 'retry-after': String(retryAfterSeconds) }),
  cancelled: (reason: string) => new ServiceError(409, 'job_cancelled', `The job was cancelled: ${reason}`),
  notACheckpoint: (model: string, kind: string) =>
    new ServiceError(400, 'invalid_request', `Model "${model}" is a ${kind}, not a checkpoint; it cannot run a job on its own.`, 'model'),
  invalidModelReference: (model: string, why: string) => new ServiceError(400, 'invalid_request', `Model reference "${model}": ${why}`, 'model'),
  /** An hf.co reference to a repository HF_ALLOWED_REPOS does not allow, from a job without `download_any_repo`. */
  modelDownloadForbidden: (model: string, rule: string) =>
    new ServiceError(403, 'model_download_forbidden', `model: "${model}" may not be downloaded: ${rule}`, 'model'),
  /** A download over HF_MAX_MODEL_BYTES or MODELS_DIR_MAX_BYTES (checked from the hub's listing, and while bytes arrive). */
  modelTooLarge: (model: string, why: string) => new ServiceError(413, 'model_too_large', `model: "${model}" cannot be downloaded: ${why}`, 'model'),
  modelDownloadFailed: (model: string, reason: string) =>
    new ServiceError(502, 'model_download_failed', `Downloading model "${model}" failed: ${reason}`, 'model'),
  /** New work while SIGTERM drains the service (the edge retries another backend on 503). */
  shuttingDown: () =>
    new ServiceError(503, 'shutting_down', 'The GPU service is shutting down; send the job to another backend.', null, { 'retry-after': '5' }),
  /** A queued or running job ended by the shutdown grace period. */
  cancelledByShutdown: (graceSeconds: number) =>
    new ServiceError(503, 'shutting_down', `The GPU service shut down; the job did not finish within the ${graceSeconds} s grace period.`),
  startDeadline: (seconds: number) => new ServiceError(504, 'start_deadline_exceeded', `The job did not start within ${seconds} s.`),
  deadline: (seconds: number) => new ServiceError(504, 'deadline_exceeded', `The job exceeded its ${seconds} s limit.`),
  internal: (message: string) => new ServiceError(500, 'internal_error', message),
};
