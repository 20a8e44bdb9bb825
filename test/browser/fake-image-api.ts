import http from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { playground } from '../../edge/src/playground';

/** One multipart file part as the fake received it. */
export interface ReceivedFile {
  filename: string;
  type: string;
  bytes: Buffer;
}

/** One API request the fake received (page assets are not recorded). */
export interface RecordedRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  accept: string | undefined;
  /** Parsed JSON body (generations). */
  json?: Record<string, unknown>;
  /** Text fields and files of a multipart body (edits). */
  fields?: Record<string, string>;
  files?: Record<string, ReceivedFile>;
}

/** The fake's switches, changeable while it runs. */
export interface FakeBehaviour {
  /** Answer `"stream": true` with 400 param "stream", as an edge without streaming does. */
  refuseStream: boolean;
  /** Pause between streamed events, in ms (long enough for the page to paint each preview). */
  stepDelayMs: number;
}

/** A running fake of the public API plus the playground page. */
export interface FakeImageApi {
  baseUrl: string;
  apiKey: string;
  requests: RecordedRequest[];
  behaviour: FakeBehaviour;
  /** Base64 PNGs the fake sends: previews (partial images), the generated image and the edited image. */
  images: { preview: string[]; generated: string; edited: string };
  /** Error messages the fake answers with, for exact assertions. */
  messages: { badKey: string; refusedPrompt: string; streamFailure: string };
  close(): Promise<void>;
}

/** Prompts that make the fake fail: a 400 before streaming, or an `error` event mid-stream. */
export const REFUSED_PROMPT_WORD = 'refuse-me';
export const STREAM_FAILURE_WORD = 'fail-mid-stream';

/** Models of the fake GET /v1/models (OpenAI list shape plus kind, capabilities, native_size, max_pixels). */
export const FAKE_MODELS = [
  {
    id: 'tiny-analytic',
    object: 'model',
    created: 1_760_000_000,
    owned_by: 'image-api',
    kind: 'checkpoint',
    capabilities: ['txt2img', 'img2img', 'inpaint'],
    native_size: [256, 256],
    max_pixels: 512 * 512,
  },
  {
    id: 'sd-turbo-onnx',
    object: 'model',
    created: 1_760_000_000,
    owned_by: 'image-api',
    kind: 'checkpoint',
    capabilities: ['txt2img', 'img2img'],
    native_size: [512, 512],
    max_pixels: 768 * 1024,
  },
  {
    id: 'flux/flux1-schnell-Q4_0.gguf',
    object: 'model',
    created: 1_760_000_000,
    owned_by: 'image-api',
    kind: 'checkpoint',
    capabilities: ['txt2img', 'img2img', 'inpaint'],
    native_size: [1024, 1024],
    max_pixels: 2048 * 2048,
    architecture: 'FLUX.1-schnell',
    prediction_type: 'flow',
    samplers: ['euler', 'heun', 'heunpp2', 'dpm_2', 'lms', 'ipndm', 'ipndm_v', 'deis'],
  },
  {
    id: 'detail-lora',
    object: 'model',
    created: 1_760_000_000,
    owned_by: 'image-api',
    kind: 'lora',
    capabilities: [],
    native_size: [512, 512],
    max_pixels: 512 * 512,
  },
  { id: 'vae-ft-mse', object: 'model', created: 1_760_000_000, owned_by: 'image-api', kind: 'vae', capabilities: [], native_size: [0, 0], max_pixels: 0 },
  { id: 'test-matting-gbr', object: 'model', created: 1_760_000_000, owned_by: 'image-api', kind: 'matting', capabilities: [], native_size: [0, 0], max_pixels: 0 },
];

/** A solid-colour PNG as base64. */
export async function solidPng(width: number, height: number, rgb: [number, number, number]): Promise<string> {
  const png = await sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } })
    .png()
    .toBuffer();
  return png.toString('base64');
}

function errorJson(type: string, code: string, message: string, param: string | null = null) {
  return { error: { code, message, param, type } };
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Parse a multipart/form-data body with undici's own parser (Request.formData). */
export async function parseMultipart(
  contentType: string,
  body: Buffer,
): Promise<{ fields: Record<string, string>; files: Record<string, ReceivedFile> }> {
  const form = await new Request('http://fake.invalid/', {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: new Uint8Array(body),
  }).formData();
  const fields: Record<string, string> = {};
  const files: Record<string, ReceivedFile> = {};
  const parts: Array<[string, FormDataEntryValue]> = [];
  form.forEach((value, name) => parts.push([name, value]));
  for (const [name, value] of parts) {
    if (typeof value === 'string') fields[name] = value;
    else files[name] = { filename: value.name, type: value.type, bytes: Buffer.from(await value.arrayBuffer()) };
  }
  return { fields, files };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Start the fake on 127.0.0.1 (random port). It serves the real playground app for every non-API path
 * and fakes the public API of the README:
 * - GET /v1/models → FAKE_MODELS;
 * - POST /v1/images/generations (JSON) and /v1/images/edits (multipart): 401 without the key, 400 for a
 *   prompt with REFUSED_PROMPT_WORD; with stream true an SSE stream (progress with queue position 2,
 *   two partial images unless preview is "none", one completed event per image, or an `error` event for a
 *   prompt with STREAM_FAILURE_WORD); otherwise JSON {created, data}. Every answer has x-task-id.
 */
export async function startFakeImageApi(options: { apiKey?: string; stepDelayMs?: number } = {}): Promise<FakeImageApi> {
  const apiKey = options.apiKey ?? 'test-playground-key';
  const images = {
    preview: [await solidPng(256, 256, [40, 60, 200]), await solidPng(256, 256, [120, 60, 140])],
    generated: await solidPng(256, 256, [210, 30, 30]),
    edited: await solidPng(256, 256, [30, 180, 60]),
  };
  const messages = {
    badKey: 'Incorrect API key provided. Check the key you entered.',
    refusedPrompt: 'The prompt was refused: it contains a blocked word.',
    streamFailure: 'The GPU service failed while sampling (out of memory).',
  };
  const behaviour: FakeBehaviour = { refuseStream: false, stepDelayMs: options.stepDelayMs ?? 100 };
  const requests: RecordedRequest[] = [];
  let taskCounter = 0;

  async function handleImages(req: http.IncomingMessage, res: http.ServerResponse, path: string): Promise<void> {
    const raw = await readBody(req);
    const record: RecordedRequest = {
      method: req.method ?? 'GET',
      path,
      authorization: req.headers.authorization,
      accept: req.headers.accept,
    };
    requests.push(record);
    let params: Record<string, unknown>;
    const contentType = req.headers['content-type'] ?? '';
    if (path === '/v1/images/edits') {
      if (!contentType.startsWith('multipart/form-data')) {
        return sendJson(res, 415, errorJson('invalid_request_error', 'unsupported_media_type', 'Send multipart/form-data.'));
      }
      const form = await parseMultipart(contentType, raw);
      record.fields = form.fields;
      record.files = form.files;
      params = { ...form.fields, stream: form.fields.stream === 'true', n: Number(form.fields.n ?? '1') };
      if (!form.files.image) return sendJson(res, 400, errorJson('invalid_request_error', 'missing_image', 'image is required.', 'image'));
    } else {
      try {
        params = JSON.parse(raw.toString('utf8'));
      } catch {
        return sendJson(res, 400, errorJson('invalid_request_error', 'invalid_json', 'The body is not JSON.'));
      }
      record.json = params;
    }
    if (req.headers.authorization !== `Bearer ${apiKey}`) {
      return sendJson(res, 401, errorJson('authentication_error', 'invalid_api_key', messages.badKey));
    }
    const prompt = String(params.prompt ?? '');
    if (prompt.includes(REFUSED_PROMPT_WORD)) {
      return sendJson(res, 400, errorJson('invalid_request_error', 'content_policy_violation', messages.refusedPrompt, 'prompt'));
    }
    if (params.stream === true && behaviour.refuseStream) {
      return sendJson(
        res,
        400,
        errorJson('invalid_request_error', 'unsupported_parameter', 'Streaming is not available yet; omit it for a JSON response.', 'stream'),
      );
    }
    const taskId = `task-${++taskCounter}`;
    const n = Number(params.n ?? 1);
    const seed = typeof params.seed === 'number' ? params.seed : Number(params.seed ?? 1234) || 1234;
    const finalImage = path === '/v1/images/edits' ? images.edited : images.generated;
    const outputFormat = String(params.output_format ?? 'png');

    if (params.stream !== true) {
      return sendJson(
        res,
        200,
        { created: Math.floor(Date.now() / 1000), data: Array.from({ length: n }, (_, i) => ({ b64_json: finalImage, seed: seed + i })) },
        { 'x-task-id': taskId },
      );
    }

    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-task-id': taskId });
    let eventId = 0;
    const send = (event: string, data: Record<string, unknown>) => {
      res.write(`id: ${++eventId}\nevent: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`);
    };
    const total = 3;
    send('image_generation.progress', { step: 0, total, eta_seconds: 4.5, queue_position: 2 });
    await sleep(behaviour.stepDelayMs);
    if (prompt.includes(STREAM_FAILURE_WORD)) {
      send('error', errorJson('server_error', 'backend_error', messages.streamFailure));
      res.end();
      return;
    }
    const created = Math.floor(Date.now() / 1000);
    for (let step = 1; step <= total; step++) {
      send('image_generation.progress', { step, total, eta_seconds: (total - step) * 0.5, queue_position: null });
      if (step < total && params.preview !== 'none') {
        send('image_generation.partial_image', {
          b64_json: images.preview[step - 1],
          partial_image_index: step - 1,
          output_format: 'png',
          created_at: created,
        });
      }
      await sleep(behaviour.stepDelayMs);
    }
    for (let i = 0; i < n; i++) {
      send('image_generation.completed', {
        b64_json: finalImage,
        seed: seed + i,
        output_format: outputFormat,
        created_at: created,
        usage: { images: n, steps: total, width: 256, height: 256, compute_units: 0.2 },
      });
    }
    res.end();
  }

  async function servePlayground(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const response = await playground.fetch(new Request(url, { method: req.method, headers: req.headers as Record<string, string> }));
    const headers: Record<string, string> = {};
    response.headers.forEach((value, key) => {
      headers[key] = value;
    });
    res.writeHead(response.status, headers);
    res.end(Buffer.from(await response.arrayBuffer()));
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = url.pathname;
    const work = (async () => {
      if (path === '/v1/models' && req.method === 'GET') {
        requests.push({ method: 'GET', path, authorization: req.headers.authorization, accept: req.headers.accept });
        if (req.headers.authorization !== `Bearer ${apiKey}`) {
          return sendJson(res, 401, errorJson('authentication_error', 'invalid_api_key', messages.badKey));
        }
        return sendJson(res, 200, { object: 'list', data: FAKE_MODELS });
      }
      if ((path === '/v1/images/generations' || path === '/v1/images/edits') && req.method === 'POST') {
        return handleImages(req, res, path);
      }
      if (path.startsWith('/v1/') || path.startsWith('/v3/')) {
        return sendJson(res, 404, errorJson('not_found_error', 'not_found', `No route ${req.method} ${path}.`));
      }
      return servePlayground(req, res, new URL(path + url.search, `http://${req.headers.host}`));
    })();
    work.catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, errorJson('server_error', 'fake_failure', String(error)));
      else res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    apiKey,
    requests,
    behaviour,
    images,
    messages,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
