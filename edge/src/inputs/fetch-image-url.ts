import { ApiError } from '../lib/api-error';
import { readCappedStream, formatBytes } from './body-size-limit';
import { IMAGE_URL_TIMEOUT_MS, MAX_IMAGE_URL_BYTES, MAX_IMAGE_URL_REDIRECTS } from './input-limits';
import { imageUrlFetchFailed, invalidImageUrl, payloadTooLarge } from './input-errors';
import { assertPublicUrl, checkPublicUrl } from './url-guard';

/** Options of {@link fetchImageUrl}. */
export interface FetchImageUrlOptions {
  /** The request field the URL came from, named in every error. */
  param: string;
  /** Accept http:// too (development flag ALLOW_HTTP_IMAGE_URLS). Default false. */
  allowHttp?: boolean;
  /** fetch to use; defaults to the global one, looked up at call time (tests stub it). */
  fetch?: typeof fetch;
  /** Total time for every hop and the body, in ms (default IMAGE_URL_TIMEOUT_MS = 10 s). */
  timeoutMs?: number;
  /** Largest body accepted, in bytes (default MAX_IMAGE_URL_BYTES = 20 MiB). */
  maxBytes?: number;
  /** Redirects followed (default MAX_IMAGE_URL_REDIRECTS = 3). */
  maxRedirects?: number;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Our only abort source is the timeout signal, so an aborted signal means the time ran out. */
function isTimeout(signal: AbortSignal): boolean {
  return signal.aborted;
}

/**
 * Fetch an image URL on a client's behalf under the SSRF policy (url-guard.ts): the URL and every
 * redirect target are checked before they are requested (redirects are handled manually, at most
 * `maxRedirects`), the whole exchange has one time limit (AbortSignal.timeout), and the body is
 * read with a byte cap (a Content-Length over it is refused before reading). No cookies or
 * credentials are sent. The bytes are NOT checked as an image here (see image-header.ts).
 * @returns the response body.
 * @throws ApiError 400 `invalid_image_url` (the URL or a redirect target is refused),
 *   400 `image_url_fetch_failed` (network error, timeout, non-2xx status, too many redirects,
 *   redirect without Location), 413 `payload_too_large` (body over `maxBytes`).
 */
export async function fetchImageUrl(raw: string, options: FetchImageUrlOptions): Promise<Uint8Array> {
  const { param } = options;
  const policy = { allowHttp: options.allowHttp ?? false };
  const maxBytes = options.maxBytes ?? MAX_IMAGE_URL_BYTES;
  const maxRedirects = options.maxRedirects ?? MAX_IMAGE_URL_REDIRECTS;
  const timeoutMs = options.timeoutMs ?? IMAGE_URL_TIMEOUT_MS;
  const signal = AbortSignal.timeout(timeoutMs);
  const fetchImpl = options.fetch ?? fetch;
  const timedOut = () => imageUrlFetchFailed(`Fetching ${param} took longer than ${timeoutMs / 1000} s.`, param);

  let current = assertPublicUrl(raw, param, policy);
  for (let redirects = 0; ; redirects++) {
    let response: Response;
    try {
      response = await fetchImpl(current.href, {
        method: 'GET',
        redirect: 'manual',
        signal,
        headers: { accept: 'image/png, image/jpeg, image/webp' },
      });
    } catch {
      if (isTimeout(signal)) throw timedOut();
      throw imageUrlFetchFailed(`${param} could not be fetched (network error).`, param);
    }
    if (REDIRECT_STATUSES.has(response.status)) {
      await response.body?.cancel().catch(() => undefined);
      if (redirects >= maxRedirects) {
        throw imageUrlFetchFailed(`${param} redirected more than ${maxRedirects} times.`, param);
      }
      const location = response.headers.get('location');
      let next: URL | null = null;
      try {
        next = location ? new URL(location, current) : null;
      } catch {
        next = null;
      }
      if (!next) throw imageUrlFetchFailed(`${param} answered a redirect without a usable Location.`, param);
      const check = checkPublicUrl(next, policy);
      if (!check.ok) throw invalidImageUrl(`${param} redirected to a refused URL: ${check.reason}.`, param);
      current = check.url;
      continue;
    }
    if (!response.ok || !response.body) {
      await response.body?.cancel().catch(() => undefined);
      throw imageUrlFetchFailed(`${param} answered HTTP ${response.status}.`, param);
    }
    const declared = response.headers.get('content-length');
    if (declared !== null && Number(declared) > maxBytes) {
      await response.body.cancel().catch(() => undefined);
      throw payloadTooLarge(`The image at ${param} (${declared} bytes) is larger than ${formatBytes(maxBytes)}.`, param);
    }
    try {
      return await readCappedStream(response.body, maxBytes, `The image at ${param}`, param, signal);
    } catch (error) {
      if (isTimeout(signal)) throw timedOut();
      if (error instanceof ApiError) throw error;
      throw imageUrlFetchFailed(`Reading ${param} failed (connection lost).`, param);
    }
  }
}
