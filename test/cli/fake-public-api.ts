import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';

/**
 * A stand-in for the public image API (edge Worker) for the CLI tests: node:http on
 * 127.0.0.1:<random port>, speaking the README's shapes. It checks the Bearer key, validates
 * `model`, `size` and `sample_method` like the real edge would (404 model_not_found, 400 naming
 * the field), and answers with real PNGs made by sharp, either as an SSE stream of progress events
 * or as plain JSON, depending on `behaviour`.
 */

/** How the fake answers POST /v1/images/generations. */
export type FakeBehaviour =
  /** SSE: queued progress, one progress event per step, a partial image, then completed (b64_json). */
  | { kind: 'stream' }
  /** SSE like 'stream', but the completed event carries a `url` to GET /files/<name>. */
  | { kind: 'stream-url' }
  /** SSE that ends with `event: error` carrying this error object. */
  | { kind: 'stream-error'; error: { code: string; message: string; param: string | null; type: string } }
  /** Plain JSON `{created, data: [{b64_json, seed}]}` even when asked to stream. */
  | { kind: 'json' }
  /** Like today's edge: 400 param "stream" when stream is true, JSON otherwise. */
  | { kind: 'refuse-stream' }
  /** A fixed status and body (and headers) for every generation request. */
  | { kind: 'status'; status: number; body: string; headers?: Record<string, string> };

/** One request the fake received. */
export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  /** Parsed JSON body (POST), or null. */
  body: Record<string, unknown> | null;
}

export interface FakePublicApi {
  /** Base URL, e.g. http://127.0.0.1:41234 */
  url: string;
  requests: RecordedRequest[];
  behaviour: FakeBehaviour;
  close(): Promise<void>;
}

/** The one model the fake serves, with a non-square native size so "no --size" is visible. */
export const FAKE_MODEL = { id: 'tiny-analytic', native_size: [192, 128] as [number, number], max_pixels: 1024 * 1024 };
export const FAKE_SAMPLERS = ['euler_a', 'euler', 'heun', 'dpm2', 'dpm++2s_a', 'dpm++2m'];
/** The seed the fake picks when the request has none. */
export const FAKE_RANDOM_SEED = 987654;
/** Steps used when the request gives no sampling_steps. */
export const FAKE_DEFAULT_STEPS = 3;

function errorJson(type: string, code: string, message: string, param: string | null = null): string {
  return JSON.stringify({ error: { code, message, param, type } });
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** A solid red PNG of width × height (what a "red apple" looks like to the tests). */
export function redPng(width: number, height: number): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: 220, g: 20, b: 30 } } })
    .png()
    .toBuffer();
}

function send(response: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'application/json', ...headers });
  response.end(body);
}

function sseEvent(event: string, id: number, data: unknown): string {
  return `id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** Start the fake on 127.0.0.1:0. `key` is the only API key it accepts. */
export async function startFakePublicApi(key: string): Promise<FakePublicApi> {
  const requests: RecordedRequest[] = [];
  const api: FakePublicApi = { url: '', requests, behaviour: { kind: 'stream' }, close: async () => {} };
  const files = new Map<string, Buffer>();

  const server = createServer((request, response) => {
    void handle(request, response).catch((error: unknown) => {
      send(response, 500, errorJson('server_error', 'fake_crashed', String(error)));
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const raw = request.method === 'POST' ? await readBody(request) : '';
    let body: Record<string, unknown> | null = null;
    try {
      body = raw ? (JSON.parse(raw) as Record<string, unknown>) : null;
    } catch {
      body = null;
    }
    requests.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers, body });

    if (request.method === 'GET' && request.url?.startsWith('/files/')) {
      const file = files.get(request.url);
      if (!file) return send(response, 404, errorJson('not_found_error', 'file_not_found', 'no such file'));
      response.writeHead(200, { 'content-type': 'image/png' });
      response.end(file);
      return;
    }
    if (request.headers.authorization !== `Bearer ${key}`) {
      return send(response, 401, errorJson('authentication_error', 'invalid_api_key', 'Incorrect API key provided.'));
    }
    if (request.method === 'GET' && request.url === '/v1/models') {
      return send(
        response,
        200,
        JSON.stringify({
          object: 'list',
          data: [
            { ...FAKE_MODEL, object: 'model', created: 0, owned_by: 'test', kind: 'checkpoint', capabilities: ['txt2img'] },
            { id: 'styles/ink', object: 'model', created: 0, owned_by: 'test', kind: 'lora', capabilities: [], native_size: [0, 0], max_pixels: 0, architecture: 'Stable Diffusion 1.x' },
          ],
        }),
      );
    }
    if (request.method !== 'POST' || request.url !== '/v1/images/generations' || body === null) {
      return send(response, 404, errorJson('not_found_error', 'not_found', `no route ${request.method} ${request.url}`));
    }

    const behaviour = api.behaviour;
    if (behaviour.kind === 'status') return send(response, behaviour.status, behaviour.body, behaviour.headers);
    if (typeof body.model === 'string' && body.model !== FAKE_MODEL.id) {
      return send(
        response,
        404,
        errorJson('not_found_error', 'model_not_found', `The model "${body.model}" does not exist.`, 'model'),
      );
    }
    let [width, height] = FAKE_MODEL.native_size;
    if (body.size !== undefined) {
      const match = /^(\d+)x(\d+)$/.exec(String(body.size));
      if (!match || Number(match[1]) % 8 !== 0 || Number(match[2]) % 8 !== 0) {
        return send(
          response,
          400,
          errorJson('invalid_request_error', 'invalid_size', 'size must be WxH with both sides multiples of 8', 'size'),
        );
      }
      [width, height] = [Number(match[1]), Number(match[2])];
    }
    if (typeof body.sample_method === 'string' && !FAKE_SAMPLERS.includes(body.sample_method)) {
      return send(
        response,
        400,
        errorJson('invalid_request_error', 'invalid_parameter', `Unknown sample_method '${body.sample_method}'.`, 'sample_method'),
      );
    }
    const seed = typeof body.seed === 'number' ? body.seed : FAKE_RANDOM_SEED;
    const png = await redPng(width, height);
    const b64 = png.toString('base64');
    const created = Math.floor(Date.now() / 1000);

    const wantsStream = body.stream === true;
    if (behaviour.kind === 'refuse-stream' && wantsStream) {
      return send(
        response,
        400,
        errorJson('invalid_request_error', 'unsupported_parameter', 'Streaming is not available yet.', 'stream'),
      );
    }
    if (!wantsStream || behaviour.kind === 'json' || behaviour.kind === 'refuse-stream') {
      return send(response, 200, JSON.stringify({ created, data: [{ b64_json: b64, seed }] }), { 'x-task-id': 'task-json' });
    }

    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-task-id': 'task-sse' });
    const total = typeof body.sampling_steps === 'number' ? body.sampling_steps : FAKE_DEFAULT_STEPS;
    let id = 0;
    response.write(': keep-alive\n\n');
    response.write(
      sseEvent('image_generation.progress', ++id, {
        type: 'image_generation.progress',
        step: 0,
        total,
        eta_seconds: total * 0.5,
        queue_position: 1,
      }),
    );
    for (let step = 1; step <= total; step++) {
      response.write(
        sseEvent('image_generation.progress', ++id, {
          type: 'image_generation.progress',
          step,
          total,
          eta_seconds: (total - step) * 0.5,
          queue_position: null,
        }),
      );
    }
    response.write(
      sseEvent('image_generation.partial_image', ++id, {
        type: 'image_generation.partial_image',
        b64_json: b64,
        partial_image_index: 0,
        output_format: 'png',
        created_at: created,
      }),
    );
    if (behaviour.kind === 'stream-error') {
      response.end(sseEvent('error', ++id, { type: 'error', error: behaviour.error }));
      return;
    }
    const image: Record<string, unknown> =
      behaviour.kind === 'stream-url' ? { url: `/files/${seed}.png` } : { b64_json: b64 };
    if (behaviour.kind === 'stream-url') files.set(`/files/${seed}.png`, png);
    // The completed event is split across two writes to exercise the client's buffering.
    const completed = sseEvent('image_generation.completed', ++id, {
      type: 'image_generation.completed',
      ...image,
      seed,
      output_format: 'png',
      created_at: created,
      usage: { images: 1, steps: total, width, height },
    });
    const half = Math.floor(completed.length / 2);
    response.write(completed.slice(0, half));
    await new Promise((resolve) => setTimeout(resolve, 20));
    response.end(completed.slice(half));
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  api.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  api.close = () =>
    new Promise<void>((resolve, reject) => {
      server.closeAllConnections();
      server.close((error) => (error ? reject(error) : resolve()));
    });
  return api;
}
