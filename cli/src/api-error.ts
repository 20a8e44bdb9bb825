import { EXIT_CODES, type ExitCode } from './exit-codes';

/**
 * Request fields the CLI fills from a flag or positional argument. A 400 whose `param` is one of
 * these is the user's to fix (exit 2); a 400 on any other field means the CLI itself sent
 * something the server does not accept (exit 1).
 */
export const FIELDS_FROM_FLAGS: ReadonlySet<string> = new Set([
  'prompt',
  'model',
  'size',
  'sample_method',
  'schedule_method',
  'sampling_steps',
  'cfg_scale',
  'seed',
  'negative_prompt',
  'output_format',
  'loras',
  'vae',
]);

/** What the CLI knows about a failed API call; every field may be missing from a broken server. */
export interface ApiErrorDetails {
  /** HTTP status, or null when the error came inside a 200 event stream or before any answer. */
  status: number | null;
  /** Machine code from the error body, e.g. `model_not_found`, `queue_full`. */
  code?: string | null;
  /** Error type from the error body (README "Public API"), e.g. `invalid_request_error`. */
  type?: string | null;
  /** The request field the server blames (dotted path), or null. */
  param?: string | null;
  /** Seconds from a Retry-After header, when the server sent one. */
  retryAfterSeconds?: number | null;
  /** Set for failures to reach the server at all (connection refused, DNS, reset). */
  network?: boolean;
}

/**
 * An error answered by (or on the way to) the public API. `exitCode` follows cli/README.md:
 * 401/403 → 3, 429 → 4, 404 → 6, 5xx and network → 5, 400/413/422 blamed on a field we took
 * from a flag → 2, anything else → 1.
 */
export class ApiError extends Error {
  readonly status: number | null;
  readonly code: string | null;
  readonly type: string | null;
  readonly param: string | null;
  readonly retryAfterSeconds: number | null;
  readonly network: boolean;
  /** Extra text appended to the one-line message (e.g. the list of available models). */
  suffix: string | null = null;

  constructor(message: string, details: ApiErrorDetails) {
    super(message);
    this.name = 'ApiError';
    this.status = details.status;
    this.code = details.code ?? null;
    this.type = details.type ?? null;
    this.param = details.param ?? null;
    this.retryAfterSeconds = details.retryAfterSeconds ?? null;
    this.network = details.network ?? false;
  }

  /** The CLI exit code for this error (cli/README.md, "Exit codes"). */
  get exitCode(): ExitCode {
    const { status, type, code } = this;
    if (this.network) return EXIT_CODES.SERVER;
    if (status === 401 || status === 403 || type === 'authentication_error' || type === 'permission_error') {
      return EXIT_CODES.AUTH;
    }
    if (status === 429 || type === 'rate_limit_error') return EXIT_CODES.RATE_LIMITED;
    if (status === 404 || type === 'not_found_error' || code === 'model_not_found') return EXIT_CODES.NOT_FOUND;
    if ((status !== null && status >= 500) || type === 'server_error') return EXIT_CODES.SERVER;
    if (status === 400 || status === 413 || status === 422 || type === 'invalid_request_error') {
      return this.param !== null && FIELDS_FROM_FLAGS.has(topLevelField(this.param))
        ? EXIT_CODES.USAGE
        : EXIT_CODES.UNEXPECTED;
    }
    return EXIT_CODES.UNEXPECTED;
  }

  /** The one line printed on stderr: `error: <message> (param: size)`, plus retry/suffix notes. */
  toLine(): string {
    const notes: string[] = [];
    if (this.param) notes.push(`param: ${this.param}`);
    if (this.retryAfterSeconds !== null) notes.push(`retry after ${this.retryAfterSeconds} s`);
    let line = `error: ${oneLine(this.message)}`;
    if (notes.length > 0) line += ` (${notes.join(', ')})`;
    if (this.suffix) line += `; ${this.suffix}`;
    return line;
  }
}

/**
 * Build an ApiError from a non-2xx HTTP answer: reads the shared error body
 * (`{error: {code, message, param, type}}`, shared/src/errors.ts) when there is one, and falls
 * back to the status line for HTML or empty bodies (a proxy's 502 page, a wrong --base-url).
 * Never throws.
 */
export async function apiErrorFromResponse(response: Response): Promise<ApiError> {
  const retryAfterSeconds = parseRetryAfter(response.headers.get('retry-after'));
  let text = '';
  try {
    text = await response.text();
  } catch {
    // A body that breaks off still leaves us the status, which decides the exit code.
  }
  const body = errorFieldsOf(safeJson(text));
  const fallback =
    response.status === 404
      ? `${response.url || 'the URL'} was not found (HTTP 404); check --base-url / IMAGE_API_URL`
      : `the server answered HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
  return new ApiError(body?.message || fallback, {
    status: response.status,
    code: body?.code,
    type: body?.type,
    param: body?.param,
    retryAfterSeconds,
  });
}

/**
 * Build an ApiError from the `error` object of an `event: error` in a stream (or any parsed
 * error body). `status` is null: the HTTP status was already 200 when the stream began.
 */
export function apiErrorFromBody(body: unknown): ApiError {
  const fields = errorFieldsOf(body) ?? errorFieldsOf({ error: body });
  return new ApiError(fields?.message || 'the server reported an error without a message', {
    status: null,
    code: fields?.code,
    type: fields?.type ?? 'server_error',
    param: fields?.param,
  });
}

/** `size` for `size`, `hires_fix` for `hires_fix.target_width`: flags map to top-level fields. */
function topLevelField(param: string): string {
  return param.split(/[.[]/)[0] ?? param;
}

/** Error messages are printed on one line; servers sometimes send several. */
function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

/** Retry-After is either delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
function parseRetryAfter(value: string | null): number | null {
  if (value === null || value.trim() === '') return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** Pick `{code, message, param, type}` out of `{error: {...}}`, tolerating missing fields. */
function errorFieldsOf(
  body: unknown,
): { code: string | null; message: string | null; param: string | null; type: string | null } | null {
  if (typeof body !== 'object' || body === null || !('error' in body)) return null;
  const error = (body as { error: unknown }).error;
  if (typeof error === 'string') return { code: null, message: error, param: null, type: null };
  if (typeof error !== 'object' || error === null) return null;
  const record = error as Record<string, unknown>;
  const str = (value: unknown): string | null => (typeof value === 'string' && value !== '' ? value : null);
  return { code: str(record.code), message: str(record.message), param: str(record.param), type: str(record.type) };
}
