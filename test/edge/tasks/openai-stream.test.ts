import { env, exports } from 'cloudflare:workers';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { decodeBase64 } from '../../../edge/src/lib/base64';
import type { TaskJson } from '../../../edge/src/tasks/task-json';
import type { ErrorBody } from '@image-api/shared/errors';
import { seedApiKey } from '../helpers/api-keys';
import { PNG_SIGNATURE } from '../helpers/png';
import { readEvents, type ReadEvent } from './sse-client';
import { installStreamingGpu, type StreamingGpu } from './streaming-gpu';

const ORIGIN = 'https://edge.test';
const KEY = 'sk-test-openai-stream';

function stream(body: Record<string, unknown>): Promise<Response> {
  return exports.default.fetch(`${ORIGIN}/v1/images/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ prompt: 'a red apple', size: '64x64', sampling_steps: 10, seed: 9, stream: true, ...body }),
  });
}

async function task(id: string): Promise<TaskJson> {
  const response = await exports.default.fetch(`${ORIGIN}/v1/tasks/${id}`, { headers: { authorization: `Bearer ${KEY}` } });
  return (await response.json()) as TaskJson;
}

const text = (b64: unknown) => new TextDecoder().decode(decodeBase64(String(b64)));
const named = (events: ReadEvent[], name: string) => events.filter((e) => e.event === name);

describe('POST /v1/images/generations with stream: true', () => {
  let gpu: StreamingGpu;
  beforeAll(async () => {
    await seedApiKey(env.API_KEYS, { key: KEY, name: 'streamer', tenant: 'tenant-st' });
  });
  beforeEach(() => {
    gpu = installStreamingGpu(env.GPU_SERVICE_URL, env.GPU_SERVICE_TOKEN);
  });
  afterEach(() => {
    gpu.release();
    gpu.restore();
  });

  it('progress, partial_images: 2 previews spread over the run, then one completed event per image, in that order', async () => {
    const response = await stream({ n: 2, partial_images: 2, response_format: 'b64_json' });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const taskId = response.headers.get('x-task-id');
    expect(taskId).toMatch(/^[0-9a-f-]{36}$/);
    const events = await readEvents(response);

    // Order: everything before the first completed is progress or partial; the completed events close the stream.
    const firstCompleted = events.findIndex((e) => e.event === 'image_generation.completed');
    expect(events.slice(firstCompleted).map((e) => e.event)).toEqual(['image_generation.completed', 'image_generation.completed']);
    expect(new Set(events.slice(0, firstCompleted).map((e) => e.event))).toEqual(
      new Set(['image_generation.progress', 'image_generation.partial_image']),
    );
    for (const event of events) expect(event.data.type).toBe(event.event);

    const progress = named(events, 'image_generation.progress');
    expect(progress[0].data).toMatchObject({ step: 0, total: 10, queue_position: null });
    expect(progress.slice(1).map((e) => e.data.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(progress[5].data).toMatchObject({ total: 10, eta_seconds: 2.5 });

    // The previews of steps ≥ 10·1/3 and ≥ 10·2/3, each right after its step's progress.
    const partials = named(events, 'image_generation.partial_image');
    expect(partials.map((e) => [e.data.partial_image_index, text(e.data.b64_json)])).toEqual([
      [0, 'preview-4'],
      [1, 'preview-7'],
    ]);
    expect(partials[0].data.output_format).toBe('jpeg');
    const afterStep4 = events.findIndex((e) => e.event === 'image_generation.progress' && e.data.step === 4) + 1;
    expect(events[afterStep4].event).toBe('image_generation.partial_image');
    expect(gpu.submitted[0].preview).toBe('fast');

    const completed = named(events, 'image_generation.completed');
    expect(completed.map((e) => e.data.seed)).toEqual([9, 10]);
    for (const event of completed) {
      expect(decodeBase64(String(event.data.b64_json)).subarray(0, 8)).toEqual(PNG_SIGNATURE);
      expect(event.data).toMatchObject({
        output_format: 'png',
        size: '64x64',
        task_id: taskId,
        usage: { images: 2, steps: 10, width: 64, height: 64, output_tokens: 2 * 64, output_tokens_details: { image_tokens: 2 * 64 } },
        receipt: { model: 'tiny-analytic', model_hash: 'sha256:fake', seeds: [9, 10], steps: 10, engine_version: 'fake-1.2.3' },
      });
      expect(event.data.url).toBeUndefined();
      expect(typeof event.data.created_at).toBe('number');
    }
    expect((await task(taskId!)).status).toBe('SUCCEED');
  });

  it('without partial_images every preview is sent; preview "normal" asks the service for full previews', async () => {
    const events = await readEvents(await stream({ preview: 'normal' }));
    const partials = named(events, 'image_generation.partial_image');
    expect(partials.map((e) => e.data.partial_image_index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(partials.map((e) => text(e.data.b64_json))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9].map((s) => `preview-${s}`));
    expect(gpu.submitted[0].preview).toBe('full');
  });

  it.each([
    ['partial_images: 0', { partial_images: 0 }],
    ['preview: "none"', { preview: 'none', partial_images: 3 }],
  ])('%s: no partial images, and the service is not asked to render previews', async (_name, body) => {
    const events = await readEvents(await stream(body));
    expect(named(events, 'image_generation.partial_image')).toEqual([]);
    expect(named(events, 'image_generation.completed')).toHaveLength(1);
    expect(gpu.submitted[0].preview).toBe('none');
  });

  it('response_format url (the default): the completed event carries the image as b64_json, as OpenAI does, and a signed link', async () => {
    const events = await readEvents(await stream({}));
    const completed = named(events, 'image_generation.completed');
    expect(completed).toHaveLength(1);
    expect(decodeBase64(String(completed[0].data.b64_json)).subarray(0, 8)).toEqual(PNG_SIGNATURE);
    const file = await exports.default.fetch(String(completed[0].data.url));
    expect(file.status).toBe(200);
    expect(new Uint8Array(await file.arrayBuffer()).subarray(0, 8)).toEqual(PNG_SIGNATURE);
  });

  it('queue positions come as progress events with queue_position before the job starts', async () => {
    gpu.plan = { queuedPositions: [2, 1, 0] };
    const events = await readEvents(await stream({ partial_images: 0 }));
    const progress = named(events, 'image_generation.progress').map((e) => [e.data.step, e.data.queue_position]);
    expect(progress.slice(0, 4)).toEqual([
      [0, 2],
      [0, 1],
      [0, 0],
      [0, null],
    ]);
  });

  it('a refusal before the job is admitted is a normal JSON error with its status (503 queue_full, Retry-After)', async () => {
    gpu.plan = { refuse: { status: 503, code: 'queue_full', headers: { 'retry-after': '4' } } };
    const response = await stream({});
    expect(response.status).toBe(503);
    expect(response.headers.get('content-type')).toContain('application/json');
    expect(response.headers.get('retry-after')).toBe('4');
    expect(((await response.json()) as ErrorBody).error.code).toBe('queue_full');
  });

  it('a job failing mid-run ends the stream with an error event; the task is FAILED with the reason', async () => {
    gpu.plan = { failAtStep: 3 };
    const response = await stream({ partial_images: 0 });
    expect(response.status).toBe(200);
    const events = await readEvents(response);
    const last = events[events.length - 1];
    expect(last.event).toBe('error');
    expect(last.data).toMatchObject({ type: 'error', error: { code: 'internal_error', message: 'The UNet failed at step 3.', type: 'server_error' } });
    expect(named(events, 'image_generation.completed')).toEqual([]);
    expect(await task(response.headers.get('x-task-id')!)).toMatchObject({ status: 'FAILED', reason: 'The UNet failed at step 3.' });
  });

  it('a stream client that leaves early does not stop the task: it finishes and its images are stored', async () => {
    gpu.plan = { holdAtStep: 3 };
    const response = await stream({ seed: 31 });
    const taskId = response.headers.get('x-task-id')!;
    await readEvents(response, (e) => e.event === 'image_generation.partial_image');
    await gpu.reached(taskId, 3);
    gpu.release();
    await gpu.ended(taskId);
    const start = Date.now();
    let row = await task(taskId);
    while (row.status !== 'SUCCEED' && Date.now() - start < 10_000) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      row = await task(taskId);
    }
    expect(row.status).toBe('SUCCEED');
    expect(row.data?.map((item) => item.seed)).toEqual([31]);
    expect(gpu.cancelRequests).toEqual([]);
  });
});
