/**
 * Issue 18, "without losing anything": the edge answers a generation only once what the answer promises is
 * durable. Work the answer does not depend on runs after it (waitUntil), but the stored image and the
 * SUCCEED task row must not be part of that. So: the answer arrives, the edge (its Node process + workerd) is
 * SIGKILLed at once, started again on the same state, and GET /v1/tasks/:id must say SUCCEED with a link
 * that serves exactly the image the answer carried.
 *
 * The task lease stays at its default (stale after 2 minutes), so within this test no read reconciles the
 * task with the GPU service: a SUCCEED row here was written by the request itself, not recovered afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSplitStack, type SplitStack } from '../helpers/stack';

let stack: SplitStack;

interface TaskView {
  id: string;
  status: string;
  attempts: number;
  data: Array<{ url: string; seed: number; index: number; mime_type: string }> | null;
}

function call(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${stack.apiKey}`);
  return fetch(`${stack.baseUrl}${path}`, { ...init, headers });
}

/** POST a small generation, read the whole answer, and SIGKILL the edge the moment it is in. */
async function generateThenKill(responseFormat: 'b64_json' | 'url', seed: number): Promise<{ taskId: string; image: Uint8Array | null; url: string | null }> {
  const response = await call('/v1/images/generations', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'a lighthouse at dusk', size: '64x64', sampling_steps: 1, seed, response_format: responseFormat }),
  });
  const text = await response.text();
  await stack.killEdge();
  expect(response.status, text).toBe(200);
  const body = JSON.parse(text) as { data: Array<{ b64_json?: string; url?: string; seed: number }> };
  expect(body.data).toHaveLength(1);
  expect(body.data[0].seed).toBe(seed);
  return {
    taskId: response.headers.get('x-task-id')!,
    image: body.data[0].b64_json ? new Uint8Array(Buffer.from(body.data[0].b64_json, 'base64')) : null,
    url: body.data[0].url ?? null,
  };
}

async function bytesOf(url: string): Promise<Uint8Array> {
  const file = await fetch(url);
  expect(file.status, url).toBe(200);
  expect(file.headers.get('content-type')).toBe('image/png');
  return new Uint8Array(await file.arrayBuffer());
}

describe('the edge killed right after its answer', () => {
  beforeAll(async () => {
    stack = await startSplitStack();
  }, 180_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('b64_json: after a SIGKILL and a restart the task is SUCCEED and its link serves the answered image', async () => {
    const { taskId, image } = await generateThenKill('b64_json', 4242);
    await stack.startEdge();
    const response = await call(`/v1/tasks/${taskId}`);
    expect(response.status).toBe(200);
    const task = (await response.json()) as TaskView;
    expect(task).toMatchObject({ id: taskId, status: 'SUCCEED', attempts: 1 });
    expect(task.data).toHaveLength(1);
    expect(task.data![0]).toMatchObject({ seed: 4242, index: 0, mime_type: 'image/png' });
    expect(await bytesOf(task.data![0].url)).toEqual(image);
  }, 120_000);

  it('url: the link of the answer itself works after a SIGKILL and a restart, and the task is SUCCEED', async () => {
    const { taskId, url } = await generateThenKill('url', 77);
    await stack.startEdge();
    const fromAnswer = await bytesOf(url!);
    const task = (await (await call(`/v1/tasks/${taskId}`)).json()) as TaskView;
    expect(task).toMatchObject({ id: taskId, status: 'SUCCEED', attempts: 1 });
    expect(await bytesOf(task.data![0].url)).toEqual(fromAnswer);
  }, 120_000);
});
