import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { errorBody, type ErrorBody, type ErrorType } from '@image-api/shared/errors';

/**
 * The edge's error catalogue: every failure a client can see is an ApiError with a stable machine
 * `code` (snake_case, as OpenAI spells them), an HTTP status, the error `type`
 * and the offending field in `param`. The error handler (middleware/error-handler.ts) is the one
 * place that renders them as the shared error body.
 */
export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly type: ErrorType,
    readonly code: string,
    message: string,
    readonly param: string | null = null,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** The JSON body of the README's "Public API". */
  toBody(): ErrorBody {
    return errorBody(this.type, this.code, this.message, this.param);
  }
}

/** 400: a field failed validation. */
export function invalidParameter(param: string | null, message: string, code = 'invalid_parameter'): ApiError {
  return new ApiError(400, 'invalid_request_error', code, message, param);
}

/** 400: a recognised field this deployment cannot serve yet (never silently ignored). */
export function unsupportedParameter(param: string, message: string): ApiError {
  return new ApiError(400, 'invalid_request_error', 'unsupported_parameter', message, param);
}

/** 401: no Authorization header / not a Bearer token. */
export function missingApiKey(): ApiError {
  return new ApiError(
    401,
    'authentication_error',
    'missing_api_key',
    'No API key provided. Send it as "Authorization: Bearer <key>".',
  );
}

/** 401: unknown or revoked key. */
export function invalidApiKey(message = 'Incorrect API key provided.'): ApiError {
  return new ApiError(401, 'authentication_error', 'invalid_api_key', message);
}

/** 404: the model is not served by the GPU service. */
export function modelNotFound(model: string): ApiError {
  return new ApiError(
    404,
    'not_found_error',
    'model_not_found',
    `The model "${model}" does not exist. List the served models with GET /v1/models.`,
    'model',
  );
}

/** 403: a /v1/files link whose signature does not match. */
export function invalidSignature(): ApiError {
  return new ApiError(403, 'permission_error', 'invalid_signature', 'The link signature is invalid.');
}

/** 403: a /v1/files link past its expiry. */
export function linkExpired(): ApiError {
  return new ApiError(403, 'permission_error', 'link_expired', 'The link has expired; request the image again for a fresh link.');
}

/** 404: any path or object that does not exist. */
export function notFound(message = 'Not found.'): ApiError {
  return new ApiError(404, 'not_found_error', 'not_found', message);
}

/** 502: the GPU service could not be reached or answered something unusable. */
export function backendUnavailable(message: string, code = 'backend_unavailable'): ApiError {
  return new ApiError(502, 'server_error', code, message);
}

/** 500: the edge is missing configuration (a secret or var). */
export function misconfigured(message: string): ApiError {
  return new ApiError(500, 'server_error', 'server_misconfigured', message);
}

/** 500: storing the outputs failed (whatever was stored for the request was removed). */
export function storageFailed(message: string): ApiError {
  return new ApiError(500, 'server_error', 'storage_failed', message);
}
