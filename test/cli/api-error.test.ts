import { describe, expect, it } from 'vitest';
import { ApiError, apiErrorFromBody, apiErrorFromResponse } from '../../cli/src/api-error';

function errorResponse(status: number, error: Record<string, unknown> | null, headers: Record<string, string> = {}): Response {
  return new Response(error === null ? '' : JSON.stringify({ error }), { status, headers });
}

describe('ApiError exit codes (docs/architecture.md)', () => {
  it.each([
    [401, 'authentication_error', null, 3],
    [403, 'permission_error', null, 3],
    [429, 'rate_limit_error', null, 4],
    [404, 'not_found_error', 'model', 6],
    [500, 'server_error', null, 5],
    [503, 'server_error', null, 5],
    [400, 'invalid_request_error', 'size', 2],
    [400, 'invalid_request_error', 'sample_method', 2],
    [422, 'invalid_request_error', 'seed', 2],
    [400, 'invalid_request_error', 'n', 1],
    [400, 'invalid_request_error', null, 1],
    [409, 'invalid_request_error', 'size', 2],
    [418, null, null, 1],
  ])('HTTP %i %s param=%s → exit %i', async (status, type, param, exitCode) => {
    const error = await apiErrorFromResponse(errorResponse(status, { code: 'x', message: 'm', param, type }));
    expect(error.exitCode).toBe(exitCode);
  });

  it('maps errors inside a stream by their type and code', () => {
    expect(apiErrorFromBody({ code: 'queue_full', message: 'busy', param: null, type: 'server_error' }).exitCode).toBe(5);
    expect(apiErrorFromBody({ code: 'model_not_found', message: 'gone', param: 'model', type: 'not_found_error' }).exitCode).toBe(6);
    expect(apiErrorFromBody({ error: { code: 'x', message: 'slow down', param: null, type: 'rate_limit_error' } }).exitCode).toBe(4);
    expect(apiErrorFromBody({}).exitCode).toBe(5);
  });

  it('network failures are exit 5', () => {
    expect(new ApiError('refused', { status: null, network: true }).exitCode).toBe(5);
  });
});

describe('the error line', () => {
  it('is "error: <message> (param: <field>)"', async () => {
    const error = await apiErrorFromResponse(
      errorResponse(400, { code: 'invalid_size', message: 'size must be a multiple of 8', param: 'size', type: 'invalid_request_error' }),
    );
    expect(error.toLine()).toBe('error: size must be a multiple of 8 (param: size)');
  });

  it('adds Retry-After (seconds or HTTP date) and keeps multi-line messages on one line', async () => {
    const seconds = await apiErrorFromResponse(
      errorResponse(429, { message: 'Too many\nrequests', type: 'rate_limit_error' }, { 'retry-after': '30' }),
    );
    expect(seconds.toLine()).toBe('error: Too many requests (retry after 30 s)');
    const date = new Date(Date.now() + 90_000).toUTCString();
    const dated = await apiErrorFromResponse(errorResponse(429, { message: 'later' }, { 'retry-after': date }));
    expect(dated.retryAfterSeconds).toBeGreaterThanOrEqual(88);
    expect(dated.retryAfterSeconds).toBeLessThanOrEqual(91);
  });

  it('falls back to the status for bodies that are not the error shape', async () => {
    const html = await apiErrorFromResponse(new Response('<html>', { status: 502, statusText: 'Bad Gateway' }));
    expect(html.toLine()).toBe('error: the server answered HTTP 502 Bad Gateway');
    expect(html.exitCode).toBe(5);
    const stringError = await apiErrorFromResponse(new Response(JSON.stringify({ error: 'nope' }), { status: 403 }));
    expect(stringError.toLine()).toBe('error: nope');
    expect(stringError.exitCode).toBe(3);
  });

  it('a bare 404 (wrong base URL) points at --base-url', async () => {
    const error = await apiErrorFromResponse(new Response('Not Found', { status: 404 }));
    expect(error.toLine()).toContain('check --base-url');
    expect(error.exitCode).toBe(6);
  });
});
