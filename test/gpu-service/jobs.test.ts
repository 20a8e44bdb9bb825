/**
 * Job life-cycle on the real tiny model over real HTTP: SSE event sequence and resumption, cancellation
 * mid-run, queue full, broken model folders.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../gpu-service/src/app';
import { tinyModelsDir } from '../helpers/tiny-model';

const TOKEN = 'jobs-test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
let app: FastifyInstance;
let base: string;

beforeAll(async () => {
  const modelsDir = await tinyModelsDir();
  // A broken model folder beside the good one: listed with its error, never blocking the others.
  await mkdir(join(modelsDir, 'broken-model'), { recursive: true });
  await writeFile(join(modelsDir, 'broken-model', 'model_index.json'), '{ not json');
  app = await buildApp({ modelsDir, serviceToken: TOKEN, executionProviders: ['cpu'], intraOpNumThreads: 1, queueMax: 1, previewInterval: 2 });
  base = await app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => app?.close());

const job = (over: Record<string, unknown> = {}) => ({
  id: `job-${Math.random().toString(36).slice(2)}`,
  model: 'tiny-analytic',
  prompt: 'a yellow sun',
  width: 64,
  height: 64,
  seed: 1,
  steps: 6,
  sampler: 'euler',
  scheduler: 'karras',
  cfg_scale: 4,
  ...over,
});

/** Parse an SSE body into events. */
function parseSse(text: string): Array<{ id: number; event: string; data: any }> {
  return text
    .split('\n\n')
    .map((block) => {
      const lines = block.split('\n');
      const get = (k: string) => lines.find((l) => l.startsWith(`${k}: `))?.slice(k.length + 2);
      const event = get('event');
      return event ? { id: Number(get('id')), event, data: JSON.parse(get('data') ?? '{}') } : null;
    })
    .filter((e): e is { id: number; event: string; data: any } => e !== null);
}

async function submitStreaming(body: unknown): Promise<Response> {
  return fetch(`${base}/v1/jobs`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify(body),
  });
}

describe('job events', () => {
  it('streams started, one step per step, previews, then done with the result; resumable by Last-Event-ID', async () => {
    const j = job({ preview: 'fast' });
    const res = await submitStreaming(j);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const events = parseSse(await res.text());
    const names = events.map((e) => e.event);
    expect(names[0]).toBe('started');
    expect(names.at(-1)).toBe('done');
    const steps = events.filter((e) => e.event === 'step');
    expect(steps.map((e) => e.data.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(steps.every((e) => e.data.total === 6 && e.data.eta_seconds >= 0)).toBe(true);
    const previews = events.filter((e) => e.event === 'preview');
    expect(previews.length).toBeGreaterThanOrEqual(2);
    expect(Buffer.from(previews[0].data.b64, 'base64').subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8])); // JPEG
    expect(events.at(-1)!.data.result.images).toHaveLength(1);
    // Ids increase; a reconnect after the 3rd event replays exactly what followed.
    expect(events.map((e) => e.id)).toEqual([...events.map((e) => e.id)].sort((a, b) => a - b));
    const after = events[2].id;
    const replay = parseSse(await (await fetch(`${base}/v1/jobs/${j.id}/events`, { headers: { ...auth, 'last-event-id': String(after) } })).text());
    expect(replay.every((e) => e.id > after)).toBe(true);
    const missed = events.filter((e) => e.id > after && e.event !== 'preview').map((e) => e.id);
    expect(replay.filter((e) => e.event !== 'preview').map((e) => e.id)).toEqual(missed);
    expect(replay.at(-1)!.event).toBe('done');
  });

  it('DELETE cancels a running job within one step and frees the slot', async () => {
    const j = job({ steps: 150, width: 256, height: 256, sampler: 'heun' });
    const res = await submitStreaming(j);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    let stepsAtCancel = -1;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      const events = parseSse(text);
      const steps = events.filter((e) => e.event === 'step');
      if (stepsAtCancel < 0 && steps.length >= 2) {
        stepsAtCancel = steps.length;
        const del = await fetch(`${base}/v1/jobs/${j.id}`, { method: 'DELETE', headers: auth });
        expect((await del.json()).cancelled).toBe(true);
      }
    }
    const events = parseSse(text);
    const last = events.at(-1)!;
    expect(last.event).toBe('error');
    expect(last.data.error.code).toBe('job_cancelled');
    const stepsTotal = events.filter((e) => e.event === 'step').length;
    expect(stepsTotal).toBeLessThanOrEqual(stepsAtCancel + 2); // the step in flight may finish, no more
    expect(stepsTotal).toBeLessThan(150);
    // The slot is free again: a new job runs straight away.
    const next = await fetch(`${base}/v1/jobs`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(job()) });
    expect(next.status).toBe(200);
  });

  it('answers 503 with Retry-After when the queue is full, and serves again afterwards', async () => {
    // Long jobs (1024², 200 Heun steps); the third request is sent only once the first is running and the
    // second is queued, so the outcome does not depend on timing.
    const long = (id: string) => job({ id, steps: 200, width: 1024, height: 1024, sampler: 'heun' });
    const untilEvent = async (res: Response, name: string) => {
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let text = '';
      while (!parseSse(text).some((e) => e.event === name)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${name}: ${text}`);
        text += decoder.decode(value, { stream: true });
      }
      return reader;
    };
    const first = await untilEvent(await submitStreaming(long('q-1')), 'started');
    const second = await untilEvent(await submitStreaming(long('q-2')), 'queued');
    const third = await fetch(`${base}/v1/jobs`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(job()) });
    expect(third.status).toBe(503);
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await third.json()).error.code).toBe('queue_full');
    await fetch(`${base}/v1/jobs/q-2`, { method: 'DELETE', headers: auth });
    await fetch(`${base}/v1/jobs/q-1`, { method: 'DELETE', headers: auth });
    for (const r of [first, second]) while (!(await r.read()).done);
    const after = await fetch(`${base}/v1/jobs`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(job()) });
    expect(after.status).toBe(200);
  });

  it('lists a broken model folder with its error while the tiny model still serves', async () => {
    const list = await (await fetch(`${base}/v1/models`, { headers: auth })).json();
    const broken = list.data.find((m: { id: string }) => m.id === 'broken-model');
    expect(broken.error).toMatch(/JSON|model_index/i);
    const ok = await fetch(`${base}/v1/jobs`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(job()) });
    expect(ok.status).toBe(200);
    const res = await fetch(`${base}/v1/jobs`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(job({ model: 'broken-model' })) });
    expect(res.status).toBe(503);
    expect((await res.json()).error.code).toBe('model_unavailable');
  });
});
