/**
 * End to end: the async task API (Novita style) on the real stack as `npm start` runs it — wrangler dev
 * with local D1 and Queues, the real GPU service with the tiny model. Submit, poll task-result until the
 * Queue consumer has finished, fetch the signed image link and check its colour.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/free-port';
import type { AsyncModelList, AsyncTaskResult } from '@image-api/shared/api/async-tasks';
import { dominant, meanColour } from '../helpers/image-stats';
import { startStack, type Stack } from '../helpers/stack';

let stack: Stack;

beforeAll(async () => {
  stack = await startStack();
}, 180_000);
afterAll(async () => stack?.stop());

function api(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${stack.baseUrl}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json', ...(init.headers as Record<string, string>) },
  });
}

/** Poll task-result until the task has ended (SUCCEED or FAILED). */
async function waitForEnd(taskId: string, timeoutMs = 90_000): Promise<AsyncTaskResult> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await api(`/v3/async/task-result?task_id=${taskId}`);
    expect(response.status).toBe(200);
    const result = (await response.json()) as AsyncTaskResult;
    if (result.task.status === 'TASK_STATUS_SUCCEED' || result.task.status === 'TASK_STATUS_FAILED') return result;
    if (Date.now() > deadline) throw new Error(`task ${taskId} still ${result.task.status} after ${timeoutMs} ms:\n${stack.output().slice(-3000)}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe('async tasks on the real stack', () => {
  it('GET /v3/model lists the tiny checkpoint', async () => {
    const response = await api('/v3/model?filter.types=checkpoint');
    expect(response.status).toBe(200);
    const body = (await response.json()) as AsyncModelList;
    expect(body.models.map((model) => model.sd_name)).toContain('tiny-analytic');
    expect(body.models.every((model) => model.type === 'checkpoint')).toBe(true);
  });

  it('txt2img "a red apple": QUEUED → SUCCEED through the Queue consumer, image_url serves a red PNG', async () => {
    const models = (await (await api('/v3/model?filter.types=checkpoint')).json()) as AsyncModelList;
    const tiny = models.models.find((model) => model.sd_name === 'tiny-analytic')!;
    const [width, height] = tiny.native_size;
    const submit = await api('/v3/async/txt2img', {
      method: 'POST',
      body: JSON.stringify({
        extra: { response_image_type: 'png' },
        request: { model_name: 'tiny-analytic', prompt: 'a red apple', width, height, image_num: 1, steps: 8, guidance_scale: 7, sampler_name: 'Euler a', seed: 11 },
      }),
    });
    expect(submit.status, await submit.clone().text()).toBe(200);
    const { task_id: taskId } = (await submit.json()) as { task_id: string };
    expect(taskId).toMatch(/^[0-9a-f-]{36}$/);

    const result = await waitForEnd(taskId);
    expect(result.task, result.task.reason).toMatchObject({ task_id: taskId, status: 'TASK_STATUS_SUCCEED', progress_percent: 100 });
    expect(result.extra.seed).toBe(11);
    expect(result.extra.debug_info.receipt).toMatchObject({ model: 'tiny-analytic', seed: 11, sampler: 'euler_ancestral' });
    expect(result.images).toHaveLength(1);
    const image = result.images[0];
    expect(image.image_type).toBe('png');
    const file = await fetch(image.image_url);
    expect(file.status).toBe(200);
    expect(file.headers.get('content-type')).toBe('image/png');
    const mean = await meanColour(Buffer.from(await file.arrayBuffer()));
    expect(mean.width).toBe(width);
    expect(dominant(mean)).toBe('red');
  });
});

describe('webhooks on the real stack', () => {
  it('the receiver copied from edge/src/webhooks/README.md verifies a webhook sent to 127.0.0.1 with the secret npm start printed', async () => {
    const readme = await readFile(resolve(import.meta.dirname, '../../edge/src/webhooks/README.md'), 'utf8');
    const receiver = /```js\n(\/\/ receiver\.mjs[\s\S]*?)```/.exec(readme)?.[1];
    expect(receiver, 'the README has the receiver.mjs block').toBeDefined();
    const secret = /Webhook signing secret: (\S+)/.exec(stack.output())?.[1];
    expect(secret, 'npm start prints the webhook secret').toBeDefined();
    const dir = await mkdtemp(join(tmpdir(), 'webhook-receiver-'));
    await writeFile(join(dir, 'receiver.mjs'), receiver!);
    const port = await freePort();
    const child = spawn(process.execPath, ['receiver.mjs'], { cwd: dir, env: { ...process.env, WEBHOOK_SIGNING_SECRET: secret, PORT: String(port) } });
    let printed = '';
    child.stdout.on('data', (c) => (printed += c));
    child.stderr.on('data', (c) => (printed += c));
    try {
      await until(() => printed.includes('webhook receiver on'), () => `receiver did not start: ${printed}`);
      const submit = await api('/v3/async/txt2img', {
        method: 'POST',
        body: JSON.stringify({
          extra: { webhook: { url: `http://127.0.0.1:${port}/hook` } },
          request: { model_name: 'tiny-analytic', prompt: 'a red apple', width: 128, height: 128, image_num: 1, steps: 4, guidance_scale: 7, sampler_name: 'Euler a', seed: 5 },
        }),
      });
      expect(submit.status, await submit.clone().text()).toBe(200);
      const { task_id: taskId } = (await submit.json()) as { task_id: string };
      await until(() => printed.includes('verified') || printed.includes('refused'), () => `no webhook arrived: ${printed}\n${stack.output().slice(-2000)}`);
      expect(printed).toContain(`verified ${taskId}:TASK_STATUS_SUCCEED: ${stack.baseUrl}/v1/files/`);
      expect(printed).not.toContain('refused');
    } finally {
      child.kill();
    }
  }, 120_000);
});

async function until(done: () => boolean, message: () => string, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(message());
    await new Promise((r) => setTimeout(r, 100));
  }
}
