import { ApiError, apiErrorFromBody, apiErrorFromResponse } from './api-error';
import { sniffImageFormat, type ImageFormat } from './image-format';
import { buildRequestBody } from './request-body';
import type { DrawOptions } from './draw-options';
import { parseSse } from './sse-parser';

/** One image the API returned, decoded. */
export interface GeneratedImage {
  /** The encoded file (PNG/JPEG/WebP bytes, as the server encoded it). */
  bytes: Uint8Array;
  /** What the bytes are, from their magic number. */
  format: ImageFormat;
  /** The seed the server reports for this image, or null when it did not say. */
  seed: number | string | null;
}

/** One `image_generation.progress` event (our extension of OpenAI's stream, README "Streaming"). */
export interface ProgressUpdate {
  /** Sampling steps done so far (0 while queued). */
  step: number;
  /** Sampling steps in all. */
  total: number;
  /** The server's estimate of the seconds left, or null. */
  etaSeconds: number | null;
  /** Place in the GPU queue while waiting (1 = next), or null once running. */
  queuePosition: number | null;
}

/** Callbacks and plumbing for generateImages; all optional. */
export interface GenerateHooks {
  onProgress?: (update: ProgressUpdate) => void;
  /** Receives debug lines (request, response status and headers, events without image data). */
  onDebug?: (line: string) => void;
  /** Aborts the request (Ctrl-C). */
  signal?: AbortSignal;
  /** Injected for tests; defaults to the global fetch. */
  fetch?: typeof fetch;
}

/** Request fields some servers may not know; a 400 on one of them makes the CLI retry without streaming. */
const STREAM_ONLY_FIELDS = new Set(['stream', 'preview']);

/**
 * Generate the image(s) described by `options` through the public API:
 * POST {baseUrl}/v1/images/generations with `stream: true`, `response_format: "b64_json"`.
 *
 * - `text/event-stream` answers are read event by event: `image_generation.progress` →
 *   `onProgress`, `image_generation.completed` → one image each (`b64_json`, or a `url` that is
 *   then fetched without the API key), `error` → ApiError; partial images are ignored.
 * - A plain JSON answer (`{created, data: [{b64_json | url, seed?}]}`) is accepted as well, so
 *   servers that do not stream work too; a 400 naming `stream`/`preview` is retried once without
 *   them.
 *
 * @returns at least one image
 * @throws ApiError for error answers (exit code from the status / error type), a server that
 *   cannot be reached or hangs up (exit 5), and answers that hold no image (exit 1 or 5);
 *   rethrows the AbortError when `signal` fires
 */
export async function generateImages(options: DrawOptions, hooks: GenerateHooks = {}): Promise<GeneratedImage[]> {
  const debug = hooks.onDebug ?? (() => {});
  const url = `${options.baseUrl}/v1/images/generations`;
  let body = buildRequestBody(options, true);
  for (;;) {
    debug(`POST ${url}`);
    debug('request header authorization: Bearer *** (the key is never printed)');
    debug(`request body ${JSON.stringify(body)}`);
    const response = await send(url, hooks, options.baseUrl, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${options.apiKey}`,
        'content-type': 'application/json',
        accept: 'text/event-stream, application/json',
      },
      body: JSON.stringify(body),
    });
    debugResponse(response, debug);
    if (!response.ok) {
      const error = await apiErrorFromResponse(response);
      if (body.stream && response.status === 400 && error.param !== null && STREAM_ONLY_FIELDS.has(error.param)) {
        debug(`the server refused "${error.param}" (${error.message}); retrying without streaming`);
        body = buildRequestBody(options, false);
        continue;
      }
      throw error;
    }
    const contentType = response.headers.get('content-type') ?? '';
    const images = contentType.includes('text/event-stream')
      ? await readStream(response, options.baseUrl, hooks, debug)
      : await readJson(response, options.baseUrl, hooks, debug);
    if (images.length === 0) {
      throw new ApiError('the server answered without an image', { status: response.status, type: 'server_error' });
    }
    return images;
  }
}

/** fetch, turning "could not connect" into an ApiError with a hint (exit 5). */
async function send(url: string, hooks: GenerateHooks, baseUrl: string, init: RequestInit): Promise<Response> {
  const doFetch = hooks.fetch ?? fetch;
  try {
    return await doFetch(url, { ...init, signal: hooks.signal });
  } catch (error) {
    if (isAbort(error)) throw error;
    throw networkError(error, baseUrl);
  }
}

function networkError(error: unknown, baseUrl: string): ApiError {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const reason = cause?.code === 'ECONNREFUSED' ? 'connection refused' : (cause?.code ?? cause?.message ?? String(error));
  return new ApiError(
    `cannot reach the API at ${baseUrl} (${reason}); is it running? \`npm start\` starts one, or set --base-url / IMAGE_API_URL`,
    { status: null, network: true },
  );
}

function debugResponse(response: Response, debug: (line: string) => void): void {
  debug(`response ${response.status} ${response.statusText}`);
  response.headers.forEach((value, name) => debug(`response header ${name}: ${value}`));
}

async function readStream(
  response: Response,
  baseUrl: string,
  hooks: GenerateHooks,
  debug: (line: string) => void,
): Promise<GeneratedImage[]> {
  if (!response.body) return [];
  const images: GeneratedImage[] = [];
  try {
    for await (const event of parseSse(response.body)) {
      let data: Record<string, unknown>;
      try {
        data = JSON.parse(event.data) as Record<string, unknown>;
      } catch {
        debug(`event ${event.event} with non-JSON data ignored`);
        continue;
      }
      const type = event.event !== 'message' ? event.event : String(data.type ?? 'message');
      debug(`event ${type} ${describeEvent(data)}`);
      if (type === 'image_generation.progress') {
        hooks.onProgress?.({
          step: numberOr(data.step, 0),
          total: numberOr(data.total, 0),
          etaSeconds: numberOrNull(data.eta_seconds),
          queuePosition: numberOrNull(data.queue_position),
        });
      } else if (type === 'image_generation.completed') {
        images.push(await decodeImage(data, baseUrl, hooks));
      } else if (type === 'error') {
        throw apiErrorFromBody(data.error ?? data);
      }
    }
  } catch (error) {
    if (error instanceof ApiError || isAbort(error)) throw error;
    throw new ApiError(`the connection broke while the image was being made (${String(error)})`, {
      status: null,
      network: true,
    });
  }
  if (images.length === 0) {
    throw new ApiError('the event stream ended before the image was finished', { status: null, type: 'server_error' });
  }
  return images;
}

async function readJson(
  response: Response,
  baseUrl: string,
  hooks: GenerateHooks,
  debug: (line: string) => void,
): Promise<GeneratedImage[]> {
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`the server answered ${response.headers.get('content-type') || 'something'} that is not JSON`, {
      status: response.status,
    });
  }
  const data = (body as { data?: unknown }).data;
  debug(`response body ${describeEvent(body as Record<string, unknown>)}`);
  if (!Array.isArray(data)) {
    throw new ApiError('the server answered JSON without a "data" list of images', { status: response.status });
  }
  const images: GeneratedImage[] = [];
  for (const item of data) images.push(await decodeImage((item ?? {}) as Record<string, unknown>, baseUrl, hooks));
  return images;
}

/** Decode one image from a `completed` event or a `data[]` item (`b64_json` or `url`). */
async function decodeImage(item: Record<string, unknown>, baseUrl: string, hooks: GenerateHooks): Promise<GeneratedImage> {
  let bytes: Uint8Array;
  if (typeof item.b64_json === 'string' && item.b64_json !== '') {
    bytes = new Uint8Array(Buffer.from(item.b64_json, 'base64'));
  } else if (typeof item.url === 'string' && item.url !== '') {
    // Signed links need no key; not sending it keeps it away from hosts other than the API.
    const link = new URL(item.url, `${baseUrl}/`).toString();
    const response = await send(link, hooks, baseUrl, { method: 'GET' });
    if (!response.ok) throw await apiErrorFromResponse(response);
    bytes = new Uint8Array(await response.arrayBuffer());
  } else {
    throw new ApiError('the server sent an image entry with neither b64_json nor url', { status: null });
  }
  const format = sniffImageFormat(bytes);
  if (format === null) {
    throw new ApiError('the server sent image data that is not a PNG, JPEG or WebP file', { status: null });
  }
  return { bytes, format, seed: typeof item.seed === 'string' && /^[0-9]+$/.test(item.seed) ? item.seed : numberOrNull(item.seed) };
}

/** JSON for debug output with image data replaced by its length. */
function describeEvent(data: Record<string, unknown>): string {
  return JSON.stringify(data, (key, value: unknown) =>
    (key === 'b64_json' || key === 'b64') && typeof value === 'string' ? `<${value.length} base64 chars>` : value,
  );
}

function numberOr(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

function numberOrNull(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function isAbort(error: unknown): boolean {
  return error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError');
}
