/**
 * Every public sampler and scheduler name of the three API styles produces an image through the public
 * API of the real stack (`npm start`: Worker + GPU service on the tiny model), with the prompt's colour:
 * stable-diffusion.cpp / GPUStack names on /v1/images/generations, ComfyUI names on /v1/img2img
 * (txt2img without image_url), AUTOMATIC1111 / Novita names on /v3/async/txt2img.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SAMPLER_NAMES, SCHEDULER_NAMES } from '@image-api/shared/sampler-names';
import type { AsyncTaskResult } from '@image-api/shared/api/async-tasks';
import { dominant, meanColour } from '../helpers/image-stats';
import { startStack, type Stack } from '../helpers/stack';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
}, 180_000);
afterAll(async () => stack?.stop());

function api(path: string, body?: unknown): Promise<Response> {
  return fetch(`${stack.baseUrl}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function colourOf(b64OrUrl: string): Promise<string> {
  const bytes = b64OrUrl.startsWith('http') ? Buffer.from(await (await fetch(b64OrUrl)).arrayBuffer()) : Buffer.from(b64OrUrl, 'base64');
  return dominant(await meanColour(bytes));
}

describe('stable-diffusion.cpp / GPUStack names on /v1/images/generations', () => {
  const cases = [
    ...SAMPLER_NAMES.sdcpp.map((name) => ({ sample_method: name, schedule_method: undefined as string | undefined })),
    ...SCHEDULER_NAMES.sdcpp.map((name) => ({ sample_method: 'euler', schedule_method: name })),
  ];
  it.each(cases)('$sample_method / $schedule_method', async ({ sample_method, schedule_method }) => {
    const res = await api('/v1/images/generations', {
      prompt: 'a blue sky',
      size: '64x64',
      sampling_steps: 8,
      response_format: 'b64_json',
      sample_method,
      ...(schedule_method ? { schedule_method } : {}),
    });
    const body = await res.json();
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(await colourOf(body.data[0].b64_json)).toBe('blue');
  });
});

describe('ComfyUI names on /v1/img2img', () => {
  const cases = [
    ...SAMPLER_NAMES.comfyui.map((name) => ({ sampler_name: name, scheduler: 'normal' })),
    ...SCHEDULER_NAMES.comfyui.map((name) => ({ sampler_name: 'euler', scheduler: name })),
  ];
  it.each(cases)('$sampler_name / $scheduler', async ({ sampler_name, scheduler }) => {
    const res = await api('/v1/img2img', { prompt: 'a blue sky', negative_prompt: '', width: 64, height: 64, steps: 8, cfg: 5, sampler_name, scheduler });
    const body = await res.json();
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(await colourOf(body.data[0].url)).toBe('blue');
  });
});

describe('AUTOMATIC1111 / Novita names on /v3/async/txt2img', () => {
  it('every sampler_name ends SUCCEED with a blue image', async () => {
    const submitted = await Promise.all(
      SAMPLER_NAMES.a1111.map(async (sampler_name) => {
        const res = await api('/v3/async/txt2img', {
          extra: { response_image_type: 'png' },
          request: { model_name: 'tiny-analytic', prompt: 'a blue sky', width: 128, height: 128, image_num: 1, steps: 8, guidance_scale: 5, sampler_name, seed: 3 },
        });
        const body = await res.json();
        expect(res.status, `${sampler_name}: ${JSON.stringify(body)}`).toBe(200);
        return { sampler_name, taskId: body.task_id as string };
      }),
    );
    const deadline = Date.now() + 120_000;
    for (const { sampler_name, taskId } of submitted) {
      let result: AsyncTaskResult;
      for (;;) {
        result = (await (await api(`/v3/async/task-result?task_id=${taskId}`)).json()) as AsyncTaskResult;
        if (result.task.status === 'TASK_STATUS_SUCCEED' || result.task.status === 'TASK_STATUS_FAILED') break;
        if (Date.now() > deadline) throw new Error(`${sampler_name}: still ${result.task.status}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(result.task.status, `${sampler_name}: ${result.task.reason}`).toBe('TASK_STATUS_SUCCEED');
      expect(await colourOf(result.images[0].image_url), sampler_name).toBe('blue');
    }
  }, 180_000);
});
