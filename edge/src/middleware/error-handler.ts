import type { Context, ErrorHandler, NotFoundHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { errorBody } from '@image-api/shared/errors';
import type { AppEnv } from '../env';
import { ApiError, notFound } from '../lib/api-error';

function render(c: Context<AppEnv>, error: ApiError): Response {
  return c.json(error.toBody(), error.status, { ...error.headers });
}

/**
 * The one place that turns errors into responses: ApiError → its status, headers and the shared
 * error body; Hono's HTTPException (malformed JSON body and the like) → the same body with its
 * status; anything else → 500 `internal_error` (logged, details never shown).
 */
export function errorHandler(): ErrorHandler<AppEnv> {
  return function handleError(error, c) {
    if (error instanceof ApiError) return render(c, error);
    if (error instanceof HTTPException) {
      const status = error.status;
      const type = status === 401 ? 'authentication_error' : status >= 500 ? 'server_error' : 'invalid_request_error';
      const code = status === 400 ? 'invalid_request' : `http_${status}`;
      return c.json(errorBody(type, code, error.message || 'Invalid request.'), status);
    }
    console.error('unhandled error', error);
    return c.json(errorBody('server_error', 'internal_error', 'Internal server error.'), 500);
  };
}

/** 404 in the shared error body for unknown routes. */
export function notFoundHandler(): NotFoundHandler<AppEnv> {
  return function handleNotFound(c) {
    return render(c, notFound(`No route ${c.req.method} ${new URL(c.req.url).pathname}.`));
  };
}
