import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAGE_HTML, PLAYGROUND_ASSETS, PLAYGROUND_CONFIG, PLAYGROUND_CSP, playground } from '../../edge/src/playground';
import { asyncSamplerName } from '../../edge/src/playground/playground-config';

// The playground's routes and its browser modules, outside the browser: the pure modules are written
// to a temporary folder and imported by Node, so their logic is tested exactly as served.

/* eslint-disable @typescript-eslint/no-explicit-any */
let folder: string;
let requestBuilder: any;
let codeSnippets: any;
let sseReader: any;
let apiClient: any;
let randomPrompts: any;

beforeAll(async () => {
  folder = mkdtempSync(path.join(os.tmpdir(), 'playground-modules-'));
  writeFileSync(path.join(folder, 'package.json'), JSON.stringify({ type: 'module' }));
  for (const [name, asset] of Object.entries(PLAYGROUND_ASSETS)) writeFileSync(path.join(folder, name), asset.body);
  const load = (name: string) => import(/* @vite-ignore */ pathToFileURL(path.join(folder, name)).href);
  requestBuilder = await load('request-builder.js');
  codeSnippets = await load('code-snippets.js');
  sseReader = await load('sse-reader.js');
  apiClient = await load('api-client.js');
  randomPrompts = await load('random-prompts.js');
});

afterAll(() => {
  if (folder) rmSync(folder, { recursive: true, force: true });
});

describe('playground routes', () => {
  it('serves the page at /, /playground and /playground/ with a same-origin-only CSP', async () => {
    for (const url of ['/', '/playground', '/playground/']) {
      const response = await playground.request(url);
      expect(response.status, url).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(response.headers.get('content-security-policy')).toBe(PLAYGROUND_CSP);
      expect(await response.text()).toBe(PAGE_HTML);
    }
    expect(PLAYGROUND_CSP).toContain("script-src 'self'");
    expect(PLAYGROUND_CSP).toContain("connect-src 'self'");
  });

  it('serves every asset with its content type and 404s unknown files', async () => {
    for (const [name, asset] of Object.entries(PLAYGROUND_ASSETS)) {
      const response = await playground.request(`/playground/${name}`);
      expect(response.status, name).toBe(200);
      const type = name.endsWith('.css') ? 'text/css; charset=utf-8' : name.endsWith('.svg') ? 'image/svg+xml' : 'text/javascript; charset=utf-8';
      expect(response.headers.get('content-type'), name).toBe(type);
      expect(await response.text()).toBe(asset.body);
    }
    expect((await playground.request('/playground/nope.js')).status).toBe(404);
    expect((await playground.request('/playground/constructor')).status).toBe(404);
  });

  it('loads nothing from outside: every script, style and import is a served asset', () => {
    const referenced = [...PAGE_HTML.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]);
    // Besides the same-origin assets, the page links the API docs of the same origin.
    expect(referenced.sort()).toEqual(['/docs', '/playground/favicon.svg', '/playground/main.js', '/playground/styles.css']);
    for (const [name, asset] of Object.entries(PLAYGROUND_ASSETS)) {
      // The SVG namespace is a name, not something the browser loads.
      const body = asset.body.replace('xmlns="http://www.w3.org/2000/svg"', '');
      expect(body, name).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)[a-z]/i);
      for (const match of asset.body.matchAll(/^import .* from '\.\/([^']+)';$/gm)) {
        expect(Object.keys(PLAYGROUND_ASSETS), `${name} imports ${match[1]}`).toContain(match[1]);
      }
    }
  });

  it('every JavaScript module is valid syntax (node --check)', () => {
    for (const name of Object.keys(PLAYGROUND_ASSETS).filter((file) => file.endsWith('.js'))) {
      const check = spawnSync(process.execPath, ['--check', path.join(folder, name)]);
      expect(check.stderr.toString(), name).toBe('');
      expect(check.status, name).toBe(0);
    }
  });
});

describe('playground config from shared/', () => {
  it('offers every sd.cpp sampler and schedule with the GPUStack defaults', () => {
    expect(PLAYGROUND_CONFIG.sampleMethods).toEqual(['euler_a', 'euler', 'heun', 'dpm2', 'dpm++2s_a', 'dpm++2m', 'dpm++2mv2', 'ipndm', 'ipndm_v', 'lcm']);
    expect(PLAYGROUND_CONFIG.scheduleMethods).toEqual(['discrete', 'karras', 'exponential', 'ays', 'gits']);
    expect(PLAYGROUND_CONFIG.defaults).toMatchObject({
      sample_method: 'euler_a',
      schedule_method: 'discrete',
      sampling_steps: 10,
      guidance: 3.5,
      cfg_scale: 4.5,
      preview: 'faster',
      strength: 0.75,
    });
  });

  it('spells sampler + schedule the async (A1111) way, with a note where there is no equivalent', () => {
    expect(asyncSamplerName('euler_a', 'discrete')).toEqual({ sampler_name: 'Euler a' });
    expect(asyncSamplerName('dpm++2m', 'karras')).toEqual({ sampler_name: 'DPM++ 2M Karras' });
    expect(asyncSamplerName('euler', 'exponential')).toEqual({ sampler_name: 'Euler', scheduler: 'Exponential' });
    expect(asyncSamplerName('heun', 'gits')).toMatchObject({ sampler_name: 'Heun', note: expect.stringContaining('gits') });
    expect(asyncSamplerName('lcm', 'discrete')).toMatchObject({ sampler_name: 'Euler', note: expect.stringContaining('lcm') });
  });
});

describe('request-builder.js', () => {
  const inputs = {
    paramStyle: 'openai',
    edit: false,
    stream: true,
    model: 'tiny-analytic',
    prompt: 'a red apple',
    n: '2',
    size: '256x256',
    response_format: 'url',
    quality: 'hd',
    style: 'natural',
    output_format: 'webp',
    sample_method: 'heun',
    schedule_method: 'karras',
    sampling_steps: '7',
    guidance: '3.5',
    cfg_scale: '5',
    negative_prompt: '',
    seed: '',
    preview: 'normal',
    strength: '0.4',
  };

  it('builds the OpenAI-compatible body with only the OpenAI fields', () => {
    expect(requestBuilder.buildRequestBody(inputs, PLAYGROUND_CONFIG)).toEqual({
      model: 'tiny-analytic',
      prompt: 'a red apple',
      n: 2,
      size: '256x256',
      response_format: 'url',
      quality: 'hd',
      style: 'natural',
      output_format: 'webp',
      stream: true,
    });
  });

  it('builds the Advanced body; empty seed = random (left out), strength only when editing', () => {
    const advanced = { ...inputs, paramStyle: 'advanced' };
    expect(requestBuilder.buildRequestBody(advanced, PLAYGROUND_CONFIG)).toEqual({
      model: 'tiny-analytic',
      prompt: 'a red apple',
      n: 2,
      size: '256x256',
      response_format: 'b64_json',
      sample_method: 'heun',
      schedule_method: 'karras',
      sampling_steps: 7,
      guidance: 3.5,
      cfg_scale: 5,
      preview: 'normal',
      stream: true,
    });
    const edit = requestBuilder.buildRequestBody({ ...advanced, edit: true, seed: '0', negative_prompt: 'text' }, PLAYGROUND_CONFIG);
    expect([edit.seed, edit.negative_prompt, edit.strength]).toEqual([0, 'text', 0.4]);
    expect(requestBuilder.editFormFields(edit)).toContainEqual(['strength', '0.4']);
    expect(requestBuilder.editFormFields(edit)).toContainEqual(['stream', 'true']);
  });

  it('sends the picked add-ons in the Advanced body: loras with strengths, embeddings, vae; lists as JSON text in the edit form', () => {
    const advanced = { ...inputs, paramStyle: 'advanced', loras: [{ model_name: 'styles/ink', strength: '0.8' }], embeddings: ['easynegative'], vae: 'vae-ft-mse' };
    const body = requestBuilder.buildRequestBody(advanced, PLAYGROUND_CONFIG);
    expect([body.loras, body.embeddings, body.vae]).toEqual([[{ model_name: 'styles/ink', strength: 0.8 }], [{ model_name: 'easynegative' }], 'vae-ft-mse']);
    const plain = requestBuilder.buildRequestBody({ ...advanced, loras: [], embeddings: [], vae: '' }, PLAYGROUND_CONFIG);
    expect(['loras', 'embeddings', 'vae'].filter((k) => k in plain)).toEqual([]);
    expect('loras' in requestBuilder.buildRequestBody({ ...inputs, loras: advanced.loras }, PLAYGROUND_CONFIG)).toBe(false);
    const edit = requestBuilder.buildRequestBody({ ...advanced, edit: true }, PLAYGROUND_CONFIG);
    expect(requestBuilder.editFormFields(edit)).toContainEqual(['loras', '[{"model_name":"styles/ink","strength":0.8}]']);
    expect(() => requestBuilder.buildRequestBody({ ...advanced, loras: [{ model_name: 'x', strength: '5' }] }, PLAYGROUND_CONFIG)).toThrow(/LoRA strength must be a number from -4 to 4/);
    const six = Array.from({ length: 6 }, () => ({ model_name: 'x', strength: 1 }));
    expect(() => requestBuilder.buildRequestBody({ ...advanced, loras: six }, PLAYGROUND_CONFIG)).toThrow(/At most 5 LoRAs/);
    const request = { origin: 'https://images.example.com', path: '/v1/images/generations', body, edit: null };
    expect(codeSnippets.asyncSnippet(request, PLAYGROUND_CONFIG, '256x256')).toContain('"sd_vae": "vae-ft-mse"');
    expect(codeSnippets.drawSnippet(request, PLAYGROUND_CONFIG)).toMatch(/--lora '?styles\/ink:0\.8'? --vae '?vae-ft-mse'?/);
  });

  it('background: sent when not auto (OpenAI panel), and View Code carries it (draw --background, SDK keyword)', () => {
    const openai = { ...inputs, paramStyle: 'openai', background: 'transparent' };
    const body = requestBuilder.buildRequestBody(openai, PLAYGROUND_CONFIG);
    expect(body.background).toBe('transparent');
    expect('background' in requestBuilder.buildRequestBody({ ...openai, background: 'auto' }, PLAYGROUND_CONFIG)).toBe(false);
    const request = { origin: 'https://images.example.com', path: '/v1/images/generations', body, edit: null };
    expect(codeSnippets.drawSnippet(request, PLAYGROUND_CONFIG)).toContain('--background transparent');
    expect(codeSnippets.pythonSnippet(request, PLAYGROUND_CONFIG)).toMatch(/background="transparent"|background='transparent'/);
  });

  it('refuses numbers the API would refuse, naming the field', () => {
    const advanced = { ...inputs, paramStyle: 'advanced' };
    expect(() => requestBuilder.buildRequestBody({ ...advanced, seed: '1.5' }, PLAYGROUND_CONFIG)).toThrow(/seed must be a whole number/);
    // guidance is only for FLUX-class models: an empty box sends none.
    expect('guidance' in requestBuilder.buildRequestBody({ ...advanced, guidance: '' }, PLAYGROUND_CONFIG)).toBe(false);
    // Seeds are uint64: exact decimal strings above 2^53 − 1, refused above 2^64 − 1.
    expect(requestBuilder.buildRequestBody({ ...advanced, seed: '18446744073709551615' }, PLAYGROUND_CONFIG).seed).toBe('18446744073709551615');
    expect(requestBuilder.buildRequestBody({ ...advanced, seed: '9007199254740991' }, PLAYGROUND_CONFIG).seed).toBe(9007199254740991);
    expect(() => requestBuilder.buildRequestBody({ ...advanced, seed: '18446744073709551616' }, PLAYGROUND_CONFIG)).toThrow(/seed must be a whole number/);
    expect(() => requestBuilder.buildRequestBody({ ...advanced, n: '11' }, PLAYGROUND_CONFIG)).toThrow(/n must be a whole number from 1 to 10/);
    expect(() => requestBuilder.buildRequestBody({ ...advanced, cfg_scale: 'x' }, PLAYGROUND_CONFIG)).toThrow(/cfg_scale/);
  });

  it('offers sizes within max_pixels, multiples of 8, the native size included', () => {
    const model = { native_size: [512, 512], max_pixels: 640 * 640 };
    const sizes = requestBuilder.sizeOptions(model);
    expect(sizes.find((size: any) => size.native).value).toBe('512x512');
    for (const size of sizes) {
      expect(size.width * size.height).toBeLessThanOrEqual(model.max_pixels);
      expect([size.width % 8, size.height % 8]).toEqual([0, 0]);
    }
    expect(sizes.map((size: any) => size.value)).toContain('640x640');
    expect(sizes.map((size: any) => size.value)).not.toContain('768x768');
  });

  it('fits an upload to the model: within max_pixels, multiples of 8', () => {
    expect(requestBuilder.fitEditSize(256, 256, 512 * 512)).toEqual({ width: 256, height: 256, resized: false });
    const fitted = requestBuilder.fitEditSize(1000, 700, 512 * 512);
    expect(fitted.width * fitted.height).toBeLessThanOrEqual(512 * 512);
    expect([fitted.width % 8, fitted.height % 8, fitted.resized]).toEqual([0, 0, true]);
    expect(fitted.width / fitted.height).toBeCloseTo(1000 / 700, 1);
    expect(requestBuilder.fitEditSize(250, 130, 512 * 512)).toEqual({ width: 248, height: 128, resized: true });
  });
});

describe('sse-reader.js', () => {
  function streamOf(chunks: string[]): ReadableStream<Uint8Array> {
    const encoder = new TextEncoder();
    return new ReadableStream({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
        controller.close();
      },
    });
  }

  it('parses events split anywhere, CRLF lines, comments, multi-line data and ids', async () => {
    const text = ': keep-alive\r\nid: 1\r\nevent: image_generation.progress\r\ndata: {"step":1,\r\ndata: "total":2}\r\n\r\nid: 2\ndata: plain\n\nevent: error\ndata: {"error":{}}';
    const chunks = [];
    for (let i = 0; i < text.length; i += 7) chunks.push(text.slice(i, i + 7));
    const events = [];
    for await (const event of sseReader.readServerSentEvents(streamOf(chunks))) events.push(event);
    expect(events).toEqual([
      { event: 'image_generation.progress', data: '{"step":1,\n"total":2}', id: '1' },
      { event: 'message', data: 'plain', id: '2' },
      { event: 'error', data: '{"error":{}}', id: '2' },
    ]);
  });
});

describe('api-client.js', () => {
  const handlers = () => {
    const seen: { progress: any[]; previews: any[]; images: any[] } = { progress: [], previews: [], images: [] };
    return {
      seen,
      handlers: {
        onProgress: (p: any) => seen.progress.push(p),
        onPreview: (p: any) => seen.previews.push(p),
        onImage: (p: any) => seen.images.push(p),
      },
    };
  };
  const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
    new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

  it('retries without stream when the server answers 400 param "stream", then reads the JSON images', async () => {
    const calls: any[] = [];
    const fetchImpl = async (url: string, init: any) => {
      calls.push({ url, body: JSON.parse(init.body), accept: init.headers.Accept });
      if (calls.length === 1) {
        return json(400, { error: { code: 'unsupported_parameter', message: 'no streaming', param: 'stream', type: 'invalid_request_error' } });
      }
      return json(200, { created: 1, data: [{ b64_json: 'QUJD', seed: 7 }, { b64_json: 'REVG', seed: 8 }] }, { 'x-task-id': 't-1' });
    };
    const { seen, handlers: h } = handlers();
    const outcome = await apiClient.sendImageRequest({
      path: '/v1/images/generations',
      apiKey: 'k',
      payload: { kind: 'json', body: { prompt: 'x', stream: true } },
      outputFormat: 'jpeg',
      handlers: h,
      fetchImpl,
    });
    expect(outcome).toEqual({ taskId: 't-1', streamed: false, streamRefused: true });
    expect(calls.map((call) => [call.body.stream, call.accept])).toEqual([
      [true, 'text/event-stream'],
      [undefined, 'application/json'],
    ]);
    expect(seen.images).toEqual([
      { b64_json: 'QUJD', url: undefined, seed: 7, output_format: 'jpeg' },
      { b64_json: 'REVG', url: undefined, seed: 8, output_format: 'jpeg' },
    ]);
  });

  it('turns error bodies, plain-text errors, stream error events and network failures into ApiErrors', async () => {
    const send = (fetchImpl: any) =>
      apiClient.sendImageRequest({
        path: '/v1/images/generations',
        apiKey: 'k',
        payload: { kind: 'json', body: { prompt: 'x', stream: true } },
        outputFormat: 'png',
        handlers: handlers().handlers,
        fetchImpl,
      });
    await expect(
      send(async () => json(429, { error: { code: 'rate_limited', message: 'Slow down.', param: null, type: 'rate_limit_error' } }, { 'retry-after': '12' })),
    ).rejects.toMatchObject({ name: 'ApiError', status: 429, code: 'rate_limited', message: 'Slow down.', retryAfter: '12' });
    await expect(send(async () => new Response('Bad Gateway', { status: 502 }))).rejects.toMatchObject({
      status: 502,
      message: 'The API answered HTTP 502: Bad Gateway',
    });
    const errorStream = 'event: image_generation.progress\ndata: {"type":"image_generation.progress","step":1,"total":2}\n\n' +
      'event: error\ndata: {"type":"error","error":{"code":"backend_error","message":"GPU lost.","param":null,"type":"server_error"}}\n\n';
    await expect(send(async () => new Response(errorStream, { status: 200, headers: { 'content-type': 'text/event-stream' } }))).rejects.toMatchObject({
      code: 'backend_error',
      message: 'GPU lost.',
    });
    await expect(
      send(async () => {
        throw new TypeError('fetch failed');
      }),
    ).rejects.toMatchObject({ status: 0, code: 'network_error' });
  });

  it('delivers streamed progress, previews and images in order', async () => {
    const events = [
      ['image_generation.progress', { step: 0, total: 2, eta_seconds: 3, queue_position: 1 }],
      ['image_generation.partial_image', { b64_json: 'UA==', partial_image_index: 0, output_format: 'png' }],
      ['image_generation.completed', { b64_json: 'Rg==', seed: 3, output_format: 'png' }],
    ] as const;
    const body = events.map(([type, data], i) => `id: ${i}\nevent: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`).join('');
    const { seen, handlers: h } = handlers();
    await apiClient.sendImageRequest({
      path: '/v1/images/edits',
      apiKey: 'k',
      payload: { kind: 'form', form: new FormData() },
      outputFormat: 'png',
      handlers: h,
      fetchImpl: async () => new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } }),
    });
    expect([seen.progress.length, seen.previews.length, seen.images.length]).toEqual([1, 1, 1]);
    expect(seen.progress[0].queue_position).toBe(1);
    expect(seen.images[0].seed).toBe(3);
  });
});

describe('code-snippets.js', () => {
  const body = {
    model: 'tiny-analytic',
    prompt: 'it\'s "quoted" $HOME `ls` @file',
    n: 2,
    size: '256x256',
    response_format: 'b64_json',
    sample_method: 'dpm++2m',
    schedule_method: 'karras',
    sampling_steps: 12,
    guidance: 3.5,
    cfg_scale: 4.5,
    negative_prompt: 'blurry',
    seed: 42,
    preview: 'faster',
    stream: true,
  };
  const variants = [
    { name: 'generate, streamed', path: '/v1/images/generations', body, edit: null },
    { name: 'generate, JSON', path: '/v1/images/generations', body: { ...body, stream: undefined }, edit: null },
    { name: 'edit with mask', path: '/v1/images/edits', body: { ...body, strength: 0.5 }, edit: { hasMask: true } },
    { name: 'edit without mask', path: '/v1/images/edits', body, edit: { hasMask: false } },
  ];

  it.each(variants)('$name: shell snippets pass bash -n, Node.js passes node --check', (variant) => {
    const cleanBody = JSON.parse(JSON.stringify(variant.body));
    const snippets = codeSnippets.buildSnippets({ origin: 'http://127.0.0.1:8787', path: variant.path, body: cleanBody, edit: variant.edit }, PLAYGROUND_CONFIG, '256x256');
    for (const kind of ['curl', 'async', 'draw']) {
      const check = spawnSync('bash', ['-n'], { input: snippets[kind] });
      expect(check.stderr.toString(), kind).toBe('');
    }
    const file = path.join(folder, `snippet-${variants.indexOf(variant)}.mjs`);
    writeFileSync(file, snippets.node);
    const check = spawnSync(process.execPath, ['--check', file]);
    expect(check.stderr.toString()).toBe('');
    if (spawnSync('python3', ['--version']).status === 0) {
      const python = spawnSync('python3', ['-c', 'import ast, sys; ast.parse(sys.stdin.read())'], { input: snippets.python });
      expect(python.stderr.toString()).toBe('');
    }
  });

  it('keeps a prompt with quotes, $ and backticks literal in curl (single-quoted, no expansion)', () => {
    const snippet = codeSnippets.curlSnippet({ origin: 'http://127.0.0.1:8787', path: '/v1/images/generations', body, edit: null });
    const printed = spawnSync('bash', ['-c', `curl() { printf '%s\\0' "$@"; }\n${snippet}`], { env: { PATH: process.env.PATH, IMAGE_API_KEY: 'k' } });
    const argv = printed.stdout.toString().split('\0');
    expect(JSON.parse(argv[argv.indexOf('-d') + 1])).toEqual(body);
  });

  it('sends edit text fields with --form-string so a prompt starting with @ is not read as a file', () => {
    const snippet = codeSnippets.curlSnippet({ origin: 'http://h', path: '/v1/images/edits', body: { prompt: '@etc/passwd' }, edit: { hasMask: false } });
    expect(snippet).toContain('--form-string prompt=@etc/passwd');
    expect(snippet).not.toMatch(/-F '?prompt=/);
    expect(snippet).toContain('-F image=@source.png');
  });

  it('draw gets the sampler explicitly and the steps of the quality table in OpenAI mode', () => {
    const draw = codeSnippets.drawSnippet(
      { origin: 'http://h', path: '/v1/images/generations', body: { model: 'm', prompt: 'p', n: 1, quality: 'hd', output_format: 'jpeg' }, edit: null },
      PLAYGROUND_CONFIG,
    );
    expect(draw).toContain("npx draw m p --sampler euler_a --sample-steps 30 --format jpeg");
  });
});

describe('random-prompts.js', () => {
  it('never returns the prompt already in the box', () => {
    const first = randomPrompts.RANDOM_PROMPTS[0];
    for (const r of [0, 0.5, 0.999999]) expect(randomPrompts.pickRandomPrompt(() => r, first)).not.toBe(first);
    expect(randomPrompts.pickRandomPrompt(() => 0, 'something else')).toBe(first);
  });
});
