/**
 * End to end on the real stack (`npm start`'s GPU service with the tiny model + wrangler dev with local
 * D1/R2/KV): OpenAI-style streaming through the official `openai` package, and reattaching to tasks
 * with GET /v1/tasks/:id[/events] — checking the colours of what comes back.
 */
import sharp from 'sharp';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSse } from '../../edge/src/tasks/sse';
import { dominant, meanColour } from '../helpers/image-stats';
import { startStack, type Stack } from '../helpers/stack';

let stack: Stack;
let client: OpenAI;

beforeAll(async () => {
  stack = await startStack();
  client = new OpenAI({ apiKey: stack.apiKey, baseURL: `${stack.baseUrl}/v1` });
}, 180_000);
afterAll(async () => stack?.stop());

interface Event {
  event: string;
  id: string | null;
  data: Record<string, unknown>;
}

function api(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${stack.apiKey}`);
  return fetch(`${stack.baseUrl}${path}`, { ...init, headers });
}

async function events(response: Response): Promise<Event[]> {
  const out: Event[] = [];
  for await (const message of parseSse(response.body!)) {
    out.push({ event: message.event, id: message.id, data: JSON.parse(message.data) as Record<string, unknown> });
  }
  return out;
}

async function colourAt(url: string): Promise<string> {
  const file = await fetch(url);
  expect(file.status).toBe(200);
  return dominant(await meanColour(Buffer.from(await file.arrayBuffer())));
}

describe('streaming and tasks on the real stack', () => {
  it('openai images.generate({stream: true, partial_images: 2}) yields 2 partial images, then the completed red image', async () => {
    const { data: stream, response } = await client.images
      .generate({ prompt: 'a red apple', stream: true, partial_images: 2, response_format: 'b64_json', size: '256x256', seed: 3 } as never)
      .withResponse();
    const taskId = response.headers.get('x-task-id');
    expect(taskId).toMatch(/^[0-9a-f-]{36}$/);
    const received: Record<string, unknown>[] = [];
    for await (const event of stream as unknown as AsyncIterable<Record<string, unknown>>) received.push(event);

    const types = received.map((event) => event.type);
    const partials = received.filter((event) => event.type === 'image_generation.partial_image');
    const completed = received.filter((event) => event.type === 'image_generation.completed');
    expect(partials.map((event) => event.partial_image_index)).toEqual([0, 1]);
    expect(completed).toHaveLength(1);
    expect(types.lastIndexOf('image_generation.partial_image')).toBeLessThan(types.indexOf('image_generation.completed'));
    expect(types.indexOf('image_generation.progress')).toBe(0);
    for (const partial of partials) {
      // OpenAI's partial images have the requested output size.
      const preview = await meanColour(Buffer.from(String(partial.b64_json), 'base64'));
      expect([preview.width, preview.height, partial.size]).toEqual([256, 256, '256x256']);
    }
    const png = Buffer.from(String(completed[0].b64_json), 'base64');
    const mean = await meanColour(png);
    expect(mean.width).toBe(256);
    expect(dominant(mean)).toBe('red');
    expect(completed[0]).toMatchObject({ seed: 3, output_format: 'png', receipt: { model: 'tiny-analytic', seed: 3, width: 256, height: 256 } });

    // After completion, the task's events give the final event (from the task row), with a link to the same image.
    const after = await events(await api(`/v1/tasks/${taskId}/events`));
    expect(after.map((event) => [event.event, event.id])).toEqual([['task.completed', 'final']]);
    const data = after[0].data.data as { url: string; seed: number }[];
    expect(data[0].seed).toBe(3);
    expect(await colourAt(data[0].url)).toBe('red');
    expect((await api(`/v1/tasks/${taskId}/events`, { headers: { 'last-event-id': 'final' } })).status).toBe(204);
  });

  it('openai images.edit({stream: true}) yields image_edit.partial_image events of the output size, then image_edit.completed', async () => {
    const blue = await sharp({ create: { width: 128, height: 128, channels: 3, background: { r: 0, g: 0, b: 255 } } }).png().toBuffer();
    const stream = await client.images.edit({
      image: await toFile(blue, 'blue.png', { type: 'image/png' }),
      prompt: 'a red apple',
      stream: true,
      partial_images: 1,
      size: '128x128',
    } as never);
    const received: Record<string, unknown>[] = [];
    for await (const event of stream as unknown as AsyncIterable<Record<string, unknown>>) received.push(event);
    const types = received.map((event) => String(event.type));
    expect(types.filter((type) => type.startsWith('image_generation.'))).toEqual([]);
    const partials = received.filter((event) => event.type === 'image_edit.partial_image');
    expect(partials).toHaveLength(1);
    expect((await meanColour(Buffer.from(String(partials[0].b64_json), 'base64'))).width).toBe(128);
    const completed = received.filter((event) => event.type === 'image_edit.completed');
    expect(completed).toHaveLength(1);
    // A default (url) stream still carries the image as b64_json, as OpenAI's does.
    expect((await meanColour(Buffer.from(String(completed[0].b64_json), 'base64'))).width).toBe(128);
    expect(String(completed[0].url)).toContain('/v1/files/');
  });

  it("a sync request's x-task-id can be reattached: the task, its receipt and its events", async () => {
    const response = await api('/v1/images/generations', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a blue sky', response_format: 'url', seed: 11 }),
    });
    expect(response.status).toBe(200);
    const taskId = response.headers.get('x-task-id')!;
    const body = (await response.json()) as { data: { url: string; seed: number }[]; receipt: Record<string, unknown> };
    expect(body.receipt).toMatchObject({ model: 'tiny-analytic', seeds: [11], sampler: 'euler_ancestral' });
    expect(typeof body.receipt.model_hash).toBe('string');
    expect(typeof body.receipt.onnxruntime_version).toBe('string');

    const task = (await (await api(`/v1/tasks/${taskId}`)).json()) as Record<string, unknown>;
    expect(task).toMatchObject({ id: taskId, status: 'SUCCEED', progress_percent: 100, receipt: body.receipt });
    const data = task.data as { url: string; seed: number }[];
    expect(data.map((item) => item.seed)).toEqual([11]);
    expect(await colourAt(data[0].url)).toBe('blue');

    const reattached = await events(await api(`/v1/tasks/${taskId}/events`, { headers: { 'last-event-id': '3' } }));
    expect(reattached.map((event) => event.event)).toEqual(['task.completed']);
  });

  it('a task reattached while it runs relays the GPU events after Last-Event-ID, then ends with task.completed', async () => {
    const streaming = await api('/v1/images/generations', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'green grass', stream: true, preview: 'none', sampling_steps: 40, size: '512x512', seed: 5 }),
    });
    expect(streaming.status).toBe(200);
    const taskId = streaming.headers.get('x-task-id')!;
    const relayed = await events(await api(`/v1/tasks/${taskId}/events`, { headers: { 'last-event-id': '2' } }));
    const final = relayed[relayed.length - 1];
    expect(final.event).toBe('task.completed');
    expect(final.id).toBe('final');
    // Whatever was still running when we attached came with the GPU service's ids, all after 2.
    // (A task.queued sent before the job reached the GPU service has no id.)
    const ids = relayed.slice(0, -1).filter((event) => event.id !== null).map((event) => Number(event.id));
    for (const id of ids) expect(id, JSON.stringify(relayed.map((e) => [e.event, e.id]))).toBeGreaterThan(2);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    for (const event of relayed.slice(0, -1)) expect(event.event).toMatch(/^task\.(queued|started|progress)$/);
    await streaming.body?.cancel();
    const url = (final.data.data as { url: string }[])[0].url;
    expect(await colourAt(url)).toBe('green');
  });
});
