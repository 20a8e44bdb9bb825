/**
 * Browser module /playground/api-client.js: the page's only way to the public API (same origin,
 * Bearer key): GET /v1/models and the image calls (JSON POST /v1/images/generations, multipart POST
 * /v1/images/edits), reading either a JSON ImagesResponse or the streamed events of the README's "Streaming"
 * (`image_generation.progress` / `.partial_image` / `.completed`, `error`). Every failure becomes an
 * ApiError carrying the API's error body (message, code, param, type) and the HTTP status.
 * `fetch` is a parameter (default: the global) so the module is testable without a browser.
 *
 * Kept as text (String.raw, so no backticks or dollar-brace inside) because the Worker serves it as is.
 */
export const API_CLIENT_JS = String.raw`// Client of the public image API (same origin, Bearer key).
import { readServerSentEvents } from './sse-reader.js';

/** An error the API answered with (status 0 = the API could not be reached). */
export class ApiError extends Error {
  constructor(status, error, retryAfter) {
    super(error.message || 'The API answered HTTP ' + status + '.');
    this.name = 'ApiError';
    this.status = status;
    this.code = error.code || null;
    this.param = error.param || null;
    this.type = error.type || null;
    this.retryAfter = retryAfter || null;
  }
}

/** The ApiError of a non-2xx response: its JSON error body when there is one, else its text. */
export async function apiErrorFromResponse(response) {
  const text = await response.text().catch(() => '');
  let error = null;
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed.error === 'object' && parsed.error !== null) error = parsed.error;
    else if (parsed && typeof parsed.error === 'string') error = { message: parsed.error };
  } catch (_) {
    // not JSON: fall through to the text
  }
  if (!error) {
    const snippet = text.trim().slice(0, 300);
    error = { message: 'The API answered HTTP ' + response.status + (snippet ? ': ' + snippet : '.') };
  }
  return new ApiError(response.status, error, response.headers.get('retry-after'));
}

async function send(fetchImpl, url, init) {
  try {
    return await fetchImpl(url, init);
  } catch (error) {
    if (error && error.name === 'AbortError') throw error;
    throw new ApiError(0, { code: 'network_error', message: 'Could not reach the API (' + (error && error.message ? error.message : error) + ').' });
  }
}

/**
 * GET /v1/models → the model objects (id, kind, capabilities, native_size [w, h], max_pixels).
 * @throws ApiError (401 for a wrong key, 0 when unreachable)
 */
export async function fetchModels(apiKey, fetchImpl) {
  const doFetch = fetchImpl || fetch;
  const response = await send(doFetch, '/v1/models', { headers: { Authorization: 'Bearer ' + apiKey, Accept: 'application/json' } });
  if (!response.ok) throw await apiErrorFromResponse(response);
  const list = await response.json();
  return Array.isArray(list.data) ? list.data : [];
}

function isStreaming(payload) {
  return payload.kind === 'json' ? payload.body.stream === true : payload.form.get('stream') === 'true';
}

function withoutStream(payload) {
  if (payload.kind === 'json') {
    const body = Object.assign({}, payload.body);
    delete body.stream;
    return { kind: 'json', body: body };
  }
  const form = new FormData();
  for (const entry of payload.form.entries()) if (entry[0] !== 'stream') form.append(entry[0], entry[1]);
  return { kind: 'form', form: form };
}

function requestInit(apiKey, payload, signal) {
  const headers = { Authorization: 'Bearer ' + apiKey };
  headers.Accept = isStreaming(payload) ? 'text/event-stream' : 'application/json';
  if (payload.kind === 'json') {
    headers['Content-Type'] = 'application/json';
    return { method: 'POST', headers: headers, body: JSON.stringify(payload.body), signal: signal };
  }
  // The browser writes the multipart boundary into Content-Type itself.
  return { method: 'POST', headers: headers, body: payload.form, signal: signal };
}

async function readEventStream(response, handlers) {
  let images = 0;
  for await (const message of readServerSentEvents(response.body)) {
    let data;
    try {
      data = JSON.parse(message.data);
    } catch (_) {
      continue; // keep-alives and non-JSON lines carry nothing for us
    }
    const type = (data && data.type) || message.event;
    if (type === 'error' || message.event === 'error') {
      throw new ApiError(response.status, (data && data.error) || { message: 'The image could not be made.' });
    }
    // Generations send image_generation.*, edits may send image_edit.* (OpenAI names both).
    if (type.endsWith('.progress')) handlers.onProgress(data);
    else if (type.endsWith('.partial_image')) handlers.onPreview(data);
    else if (type.endsWith('.completed')) {
      images += 1;
      handlers.onImage(data);
    }
  }
  if (images === 0) throw new ApiError(response.status, { code: 'stream_ended', message: 'The stream ended before any image was finished.' });
}

/**
 * Send an image request and deliver what comes back through handlers:
 * onProgress({step, total, eta_seconds, queue_position}), onPreview({b64_json, partial_image_index,
 * output_format}), onImage({b64_json | url, seed, output_format}). A streamed answer is read event by
 * event; a JSON answer ({created, data: [...]}) gives one onImage per item. When the server refuses
 * streaming (400 with param "stream") the request is sent again without it.
 *
 * @param options {{path: string, apiKey: string, payload: {kind: 'json', body: object} | {kind: 'form',
 *   form: FormData}, outputFormat: string, handlers: object, signal: AbortSignal, fetchImpl?: Function}}
 * @returns {{taskId: string|null, streamed: boolean, streamRefused: boolean}}
 * @throws ApiError with the API's message; AbortError when options.signal aborts
 */
export async function sendImageRequest(options) {
  const doFetch = options.fetchImpl || fetch;
  let payload = options.payload;
  let streamRefused = false;
  let response = await send(doFetch, options.path, requestInit(options.apiKey, payload, options.signal));
  if (!response.ok) {
    const error = await apiErrorFromResponse(response);
    if (!(error.status === 400 && error.param === 'stream' && isStreaming(payload))) throw error;
    streamRefused = true;
    payload = withoutStream(payload);
    response = await send(doFetch, options.path, requestInit(options.apiKey, payload, options.signal));
    if (!response.ok) throw await apiErrorFromResponse(response);
  }
  const taskId = response.headers.get('x-task-id');
  const contentType = response.headers.get('content-type') || '';
  if (contentType.indexOf('text/event-stream') >= 0) {
    await readEventStream(response, options.handlers);
    return { taskId: taskId, streamed: true, streamRefused: streamRefused };
  }
  const result = await response.json();
  const data = Array.isArray(result.data) ? result.data : [];
  if (data.length === 0) throw new ApiError(response.status, { code: 'no_images', message: 'The API answered without any image.' });
  for (const item of data) {
    options.handlers.onImage({ b64_json: item.b64_json, url: item.url, seed: item.seed, output_format: options.outputFormat });
  }
  return { taskId: taskId, streamed: false, streamRefused: streamRefused };
}
`;
