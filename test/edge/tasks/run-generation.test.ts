import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import type { GenerationJobInput, GenerationResult } from '@image-api/shared/generation-job';
import type { GpuClient, GpuJobStream, JobLocation } from '../../../edge/src/gpu/backend-client';
import { ApiError } from '../../../edge/src/lib/api-error';
import { encodeBase64 } from '../../../edge/src/lib/base64';
import { runGeneration, type GenerationEvent } from '../../../edge/src/tasks/run-generation';
import { TaskStore } from '../../../edge/src/tasks/task-store';
import { solidPng } from '../helpers/png';

const OWNER = { tenant: 'tenant-r', key_hash: 'd'.repeat(64) };
const BACKEND = 'http://gpu-a.test';

function job(id: string): GenerationJobInput {
  return { id, tenant: OWNER.tenant, model: 'tiny-analytic', prompt: 'a red apple', width: 64, height: 64, seed: 3, steps: 4, output: { format: 'png', quality: 90 } };
}

async function result(id: string): Promise<GenerationResult> {
  const png = await solidPng(64, 64, [200, 10, 10]);
  return {
    id,
    images: [{ index: 0, seed: 3, mime_type: 'image/png', b64: encodeBase64(png) }],
    params: {
      model: 'tiny-analytic',
      model_hash: 'sha256:abc',
      mode: 'txt2img',
      prompt: 'a red apple',
      negative_prompt: '',
      width: 64,
      height: 64,
      batch_size: 1,
      seed: 3,
      seeds: [3],
      steps: 4,
      sampler: 'euler',
      scheduler: 'normal',
      cfg_scale: 7,
      rng: 'cpu',
      engine_version: 'engine-9',
      onnxruntime_version: '1.30.0',
    },
    timings: { total_ms: 3 },
  };
}

/** An event-stream Response of frames, optionally breaking (a network error) after them. */
function sse(frames: string[], breaks = false): GpuJobStream {
  const encoder = new TextEncoder();
  let next = 0;
  // One frame per read, then the end or the break (an error discards chunks not yet read).
  const body = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (next < frames.length) controller.enqueue(encoder.encode(frames[next++]));
        else if (breaks) controller.error(new TypeError('Network connection lost.'));
        else controller.close();
      },
    },
    { highWaterMark: 0 },
  );
  return { backendUrl: BACKEND, response: new Response(body, { headers: { 'content-type': 'text/event-stream' } }) };
}

const frame = (id: number, event: string, data: unknown) => `id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

/** A GpuClient whose streamJob / jobEvents answers are scripted; records the jobEvents calls. */
function scriptedGpu(streamJob: () => Promise<GpuJobStream>, jobEvents: (() => Promise<GpuJobStream>)[] = []) {
  const resumes: (JobLocation & { lastEventId?: string })[] = [];
  const gpu: GpuClient = {
    listModels: async () => [],
    runJob: async () => {
      throw new Error('not used');
    },
    streamJob,
    jobEvents: async (_id, options = {}) => {
      resumes.push(options);
      const next = jobEvents.shift();
      if (!next) throw new ApiError(404, 'not_found_error', 'job_not_found', 'gone');
      return next();
    },
    getJob: async () => null,
    cancelJob: async () => null,
  };
  return { gpu, resumes };
}

async function newTask(store: TaskStore) {
  return store.create({ id: crypto.randomUUID(), owner: OWNER, key_name: 'runner-test', style: 'async.txt2img', request: {} });
}

describe('runGeneration', () => {
  it('resumes a broken event stream from the last event id and finishes the task', async () => {
    const store = new TaskStore(env.DB);
    const task = await newTask(store);
    const done = await result(task.id);
    const { gpu, resumes } = scriptedGpu(
      async () => sse([frame(1, 'started', {}), frame(2, 'step', { step: 1, total: 4, eta_seconds: 3 })], true),
      [async () => sse([frame(3, 'step', { step: 2, total: 4, eta_seconds: 2 }), frame(4, 'done', { result: done })])],
    );
    const events: GenerationEvent[] = [];
    const outcome = await runGeneration({ store, gpu, bucket: env.IMAGES }, { task, job: job(task.id), onEvent: (e) => void events.push(e) });
    expect(resumes).toEqual([{ backendUrl: BACKEND, lastEventId: '2', signal: undefined }]);
    expect(events.map((e) => e.event)).toEqual(['accepted', 'started', 'step', 'step']);
    expect(outcome.taskResult.receipt).toEqual(done.params);
    const row = await store.get(task.id, OWNER);
    expect(row).toMatchObject({ status: 'SUCCEED', attempts: 1, backend: BACKEND });
    const stored = await env.IMAGES.get(row!.result!.images[0].key);
    expect(stored?.customMetadata).toMatchObject({ task_id: task.id, key_name: 'runner-test', model_hash: 'sha256:abc', engine_version: 'engine-9', seed: '3' });
  });

  it('a stream lost for good fails the task with backend_stream_ended', async () => {
    const store = new TaskStore(env.DB);
    const task = await newTask(store);
    const { gpu } = scriptedGpu(async () => sse([frame(1, 'started', {})], true));
    await expect(runGeneration({ store, gpu, bucket: env.IMAGES }, { task, job: job(task.id) })).rejects.toMatchObject({ status: 502, code: 'backend_stream_ended' });
    expect(await store.get(task.id, OWNER)).toMatchObject({ status: 'FAILED', error: { code: 'backend_stream_ended' } });
  });

  it('isFinalFailure false puts the task back to QUEUED with the reason and still throws', async () => {
    const store = new TaskStore(env.DB);
    const task = await newTask(store);
    const { gpu } = scriptedGpu(async () => {
      throw new ApiError(503, 'server_error', 'queue_full', 'The job queue is full; retry later.');
    });
    await expect(
      runGeneration({ store, gpu, bucket: env.IMAGES }, { task, job: job(task.id), isFinalFailure: (error) => error.status < 500 }),
    ).rejects.toMatchObject({ code: 'queue_full' });
    expect(await store.get(task.id, OWNER)).toMatchObject({ status: 'QUEUED', attempts: 1, reason: 'The job queue is full; retry later.' });
  });

  it('a task cancelled before it ran is refused without calling the GPU service', async () => {
    const store = new TaskStore(env.DB);
    const task = await newTask(store);
    await store.cancel(task.id, { code: 'task_cancelled', message: 'The task was cancelled by the client.', param: null, type: 'invalid_request_error' });
    let submitted = false;
    const { gpu } = scriptedGpu(async () => {
      submitted = true;
      return sse([]);
    });
    await expect(runGeneration({ store, gpu, bucket: env.IMAGES }, { task, job: job(task.id) })).rejects.toMatchObject({ status: 409, code: 'task_cancelled' });
    expect(submitted).toBe(false);
    expect((await store.get(task.id, OWNER))?.status).toBe('CANCELLED');
  });

  it('refuses a job whose id is not the task id', async () => {
    const store = new TaskStore(env.DB);
    const task = await newTask(store);
    const { gpu } = scriptedGpu(async () => sse([]));
    await expect(runGeneration({ store, gpu, bucket: env.IMAGES }, { task, job: job('other') })).rejects.toThrow(/not the task id/);
  });
});
