import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ApiError } from '../../cli/src/api-error';
import type { DrawOptions } from '../../cli/src/draw-options';
import { generateImages, type ProgressUpdate } from '../../cli/src/generate-images';
import { FAKE_DEFAULT_STEPS, startFakePublicApi, type FakePublicApi } from './fake-public-api';

// generateImages in-process against the fake public API: the progress events it reports and the
// images it decodes.
const KEY = 'sk-test-generate-0123456789';
let api: FakePublicApi;

beforeAll(async () => {
  api = await startFakePublicApi(KEY);
});
afterAll(async () => {
  await api.close();
});
beforeEach(() => {
  api.behaviour = { kind: 'stream' };
  api.requests.length = 0;
});

function options(overrides: Partial<DrawOptions> = {}): DrawOptions {
  return {
    prompt: 'a red apple',
    model: null,
    size: '16x24',
    sampler: 'euler',
    scheduler: null,
    steps: null,
    cfgScale: null,
    seed: 11,
    negativePrompt: null,
    loras: [],
    vae: null,
    background: null,
    format: 'png',
    output: { kind: 'folder', folder: '.' },
    show: false,
    debug: false,
    apiKey: KEY,
    baseUrl: api.url,
    ...overrides,
  };
}

describe('generateImages', () => {
  it('reports every progress event (queue position first) and returns the decoded PNG with its seed', async () => {
    const updates: ProgressUpdate[] = [];
    const images = await generateImages(options({ steps: 4 }), { onProgress: (update) => updates.push(update) });
    expect(updates).toEqual([
      { step: 0, total: 4, etaSeconds: 2, queuePosition: 1 },
      { step: 1, total: 4, etaSeconds: 1.5, queuePosition: null },
      { step: 2, total: 4, etaSeconds: 1, queuePosition: null },
      { step: 3, total: 4, etaSeconds: 0.5, queuePosition: null },
      { step: 4, total: 4, etaSeconds: 0, queuePosition: null },
    ]);
    expect(images).toHaveLength(1);
    expect(images[0]!.format).toBe('png');
    expect(images[0]!.seed).toBe(11);
    // PNG IHDR: width and height are big-endian uint32 at bytes 16 and 20.
    const view = new DataView(images[0]!.bytes.buffer, images[0]!.bytes.byteOffset);
    expect([view.getUint32(16), view.getUint32(20)]).toEqual([16, 24]);
  });

  it('asks for a stream with no previews and accepts both text/event-stream and JSON', async () => {
    await generateImages(options());
    const request = api.requests[0]!;
    expect(request.headers.accept).toBe('text/event-stream, application/json');
    expect(request.body).toMatchObject({ stream: true, preview: 'none', response_format: 'b64_json' });
  });

  it('sends debug lines that hold no image data and no key', async () => {
    const lines: string[] = [];
    await generateImages(options(), { onDebug: (line) => lines.push(line) });
    expect(lines.filter((line) => line.startsWith('event image_generation.progress'))).toHaveLength(FAKE_DEFAULT_STEPS + 1);
    expect(lines.some((line) => line.startsWith('event image_generation.completed'))).toBe(true);
    expect(lines.join('\n')).not.toMatch(/iVBORw0KGgo/); // base64 of the PNG signature
    expect(lines.join('\n')).not.toContain(KEY);
  });

  it('fails with exit 5 when the stream ends without a completed image', async () => {
    const fetchWithoutImage: typeof fetch = async () =>
      new Response('event: image_generation.progress\ndata: {"step":1,"total":2}\n\n', {
        headers: { 'content-type': 'text/event-stream' },
      });
    const error = await generateImages(options(), { fetch: fetchWithoutImage }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).exitCode).toBe(5);
    expect((error as ApiError).message).toContain('ended before the image was finished');
  });

  it('refuses image data that is not an image (exit 1)', async () => {
    const fetchText: typeof fetch = async () =>
      Response.json({ created: 0, data: [{ b64_json: Buffer.from('hello').toString('base64'), seed: 1 }] });
    const error = (await generateImages(options(), { fetch: fetchText }).catch((caught: unknown) => caught)) as ApiError;
    expect(error.message).toContain('not a PNG, JPEG or WebP');
    expect(error.exitCode).toBe(1);
  });

  it('stops when aborted, with an AbortError', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(generateImages(options(), { signal: controller.signal })).rejects.toMatchObject({ name: 'AbortError' });
  });
});
