/**
 * End to end: post-processing on the real stack as `npm start` runs it, which writes the test stand-ins into
 * MODELS_DIR beside tiny-analytic (here a fresh folder holding only tiny-analytic):
 * - /v1/models lists them with their kinds;
 * - OpenAI `background: "transparent"`: every pixel's alpha in the returned PNG is the stand-in's known function
 *   of its colour, the response says `background: "transparent"` and the receipt lists the matting stage;
 * - async hires fix with the ×4 nearest upscaler model by name: SUCCEED at the target size, the stage in the receipt;
 * - async enable_transparent_background on a non-SDXL checkpoint: 400 naming it (Novita's rule).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AsyncTaskResult } from '@image-api/shared/api/async-tasks';
import { generateTinyModel } from '../../scripts/tiny-model/generate';
import { testMattingAlpha, TEST_MATTING_MODEL, TEST_UPSCALER_MODEL } from '../../scripts/tiny-model/postprocess-models';
import { TEST_FACE_DETECTOR_MODEL, TEST_FACE_RESTORER_MODEL } from '../../scripts/tiny-model/face-models';
import { startStack, type Stack } from '../helpers/stack';

let stack: Stack;

beforeAll(async () => {
  const modelsDir = await mkdtemp(join(tmpdir(), 'models-e2e-postprocess-'));
  await generateTinyModel(join(modelsDir, 'tiny-analytic'));
  stack = await startStack({ modelsDir });
}, 180_000);
afterAll(async () => stack?.stop());

function api(path: string, body?: unknown): Promise<Response> {
  return fetch(`${stack.baseUrl}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function waitForEnd(taskId: string, timeoutMs = 90_000): Promise<AsyncTaskResult> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = (await (await api(`/v3/async/task-result?task_id=${taskId}`)).json()) as AsyncTaskResult;
    if (result.task.status === 'TASK_STATUS_SUCCEED' || result.task.status === 'TASK_STATUS_FAILED') return result;
    if (Date.now() > deadline) throw new Error(`task ${taskId} still ${result.task.status}:\n${stack.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('post-processing on the real stack', () => {
  it('npm start put the stand-ins in MODELS_DIR: /v1/models lists them with their kinds', async () => {
    const body = (await (await api('/v1/models')).json()) as { data: Array<{ id: string; kind: string }> };
    expect(body.data.filter((m) => m.kind !== 'checkpoint').map((m) => [m.id, m.kind])).toEqual([
      [TEST_MATTING_MODEL, 'matting'],
      [TEST_FACE_DETECTOR_MODEL, 'facerestore'],
      [TEST_FACE_RESTORER_MODEL, 'facerestore'],
      [TEST_UPSCALER_MODEL, 'upscaler'],
    ]);
  });

  it('OpenAI background transparent: alpha = clamp(g + b − r) of every pixel of the PNG', async () => {
    const response = await api('/v1/images/generations', { prompt: 'a grey wall', size: '128x128', seed: 4, background: 'transparent', response_format: 'b64_json' });
    expect(response.status, await response.clone().text()).toBe(200);
    const body = (await response.json()) as { background: string; data: Array<{ b64_json: string }>; receipt: { postprocess: Array<{ stage: string; model: string; hash: string }> } };
    expect(body.background).toBe('transparent');
    expect(body.receipt.postprocess).toEqual([{ stage: 'matting', model: TEST_MATTING_MODEL, hash: expect.stringMatching(/^[0-9a-f]{64}$/) }]);
    const { data, info } = await sharp(Buffer.from(body.data[0].b64_json, 'base64')).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([128, 128, 4]);
    for (let p = 0; p < 128 * 128; p++) expect(data[p * 4 + 3], `pixel ${p}`).toBe(testMattingAlpha(data[p * 4], data[p * 4 + 1], data[p * 4 + 2]));
  });

  it('async hires fix with the upscaler model by name: SUCCEED at the target size; transparent on a non-SDXL model is a 400', async () => {
    const request = { model_name: 'tiny-analytic', prompt: 'a red apple', width: 128, height: 128, image_num: 1, steps: 4, guidance_scale: 7, sampler_name: 'Euler', seed: 9 };
    const submit = await api('/v3/async/txt2img', { request: { ...request, hires_fix: { target_width: 512, target_height: 512, strength: 0.3, upscaler: TEST_UPSCALER_MODEL } } });
    expect(submit.status, await submit.clone().text()).toBe(200);
    const result = await waitForEnd(((await submit.json()) as { task_id: string }).task_id);
    expect(result.task.status, result.task.reason).toBe('TASK_STATUS_SUCCEED');
    expect(result.extra.debug_info.receipt).toMatchObject({ hires_fix: { upscaler: 'model', upscale_model: TEST_UPSCALER_MODEL }, postprocess: [{ stage: 'hires_upscale', model: TEST_UPSCALER_MODEL }] });
    const file = await fetch(result.images[0].image_url);
    const meta = await sharp(Buffer.from(await file.arrayBuffer())).metadata();
    expect([meta.width, meta.height]).toEqual([512, 512]);
    const refused = await api('/v3/async/txt2img', { request: { ...request, enable_transparent_background: true } });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { param: string; message: string } }).error).toMatchObject({ param: 'request.enable_transparent_background', message: expect.stringMatching(/SDXL/) });
  });

  it('async restore_faces with the face stand-ins: SUCCEED, both face stages with hashes in the receipt, 0 faces (the tiny model draws no magenta)', async () => {
    const request = { model_name: 'tiny-analytic', prompt: 'a red apple', width: 128, height: 128, image_num: 1, steps: 4, guidance_scale: 7, sampler_name: 'Euler', seed: 9 };
    const submit = await api('/v3/async/txt2img', { request: { ...request, restore_faces: true, face_restore_fidelity: 0 } });
    expect(submit.status, await submit.clone().text()).toBe(200);
    const result = await waitForEnd(((await submit.json()) as { task_id: string }).task_id);
    expect(result.task.status, result.task.reason).toBe('TASK_STATUS_SUCCEED');
    const hash = expect.stringMatching(/^[0-9a-f]{64}$/);
    expect(result.extra.debug_info.receipt?.postprocess).toEqual([
      { stage: 'face_detect', model: TEST_FACE_DETECTOR_MODEL, hash },
      { stage: 'face_restore', model: TEST_FACE_RESTORER_MODEL, hash, faces: [0], fidelity: 0 },
    ]);
    const refused = await api('/v3/async/txt2img', { request: { ...request, face_restore_fidelity: 0.5 } });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { param: string } }).error.param).toBe('request.face_restore_fidelity');
  });
});
