/**
 * End to end through the public API: a user drops the fixtures' tiny SD 2.x checkpoint (with its sidecar) into
 * MODELS_DIR/checkpoints/, next to a truncated copy and a pickle file. The listing shows the detected
 * architecture and why the broken ones cannot load; /v1/img2img (ComfyUI names, text-to-image) with the fixture
 * pipeline's parameters returns diffusers' own image within 1 per channel; naming a broken file is a 503
 * model_unavailable with the reason.
 */
import { copyFile, mkdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateTinyModel } from '../../scripts/tiny-model/generate';
import { fixtureDir, hasFixture } from '../helpers/checkpoint-fixtures';
import { addFixtureCheckpoint, makeModelsDir } from '../helpers/checkpoint-models-dir';
import { startStack, type Stack } from '../helpers/stack';

const available = hasFixture('checkpoints') && hasFixture('clip-tokenizer');
const MODEL = 'sd2/sd2-tiny.safetensors';
let stack: Stack;

beforeAll(async () => {
  if (!available) return;
  const modelsDir = await makeModelsDir('e2e-checkpoints-');
  await generateTinyModel(path.join(modelsDir, 'tiny-analytic'));
  await addFixtureCheckpoint(modelsDir, 'checkpoints/sd2-tiny', 'sd2-tiny.safetensors', MODEL);
  const broken = path.join(modelsDir, 'checkpoints/broken/cut.safetensors');
  await mkdir(path.dirname(broken), { recursive: true });
  await copyFile(path.join(fixtureDir('checkpoints/sd2-tiny'), 'sd2-tiny.safetensors'), broken);
  await truncate(broken, (await stat(broken)).size - 4096);
  await writeFile(path.join(modelsDir, 'checkpoints/old-model.ckpt'), Buffer.from([0x80, 0x02, 0x7d, 0x71, 0x00]));
  stack = await startStack({ modelsDir });
}, 240_000);
afterAll(async () => {
  await stack?.stop();
});

const api = (route: string, init: RequestInit = {}) =>
  fetch(`${stack.baseUrl}${route}`, { ...init, headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });

describe.skipIf(!available)('checkpoints in MODELS_DIR/checkpoints through the public API', () => {
  it('GET /v1/models lists the checkpoint by its relative path with what was detected, and the broken files with why', async () => {
    const res = await api('/v1/models');
    expect(res.status).toBe(200);
    const { data } = (await res.json()) as { data: Array<Record<string, unknown>> };
    const sd2 = data.find((m) => m.id === MODEL);
    expect(sd2).toMatchObject({
      kind: 'checkpoint',
      architecture: 'Stable Diffusion 2.x',
      prediction_type: 'v_prediction',
      format: 'safetensors',
      stored_dtype: 'F16',
      dtype: 'float32',
      capabilities: ['txt2img', 'img2img', 'inpaint'],
      native_size: [64, 64],
    });
    expect(sd2?.error).toBeUndefined();
    const cut = data.find((m) => m.id === 'broken/cut.safetensors');
    expect(String(cut?.error)).toMatch(/lie outside the \d+-byte data region \(truncated\?\)/);
    const pickle = data.find((m) => m.id === 'old-model.ckpt');
    expect(String(pickle?.error)).toMatch(/pickle files are never loaded.*Convert it to \.safetensors/);
    const novita = (await (await api('/v3/model?filter.types=checkpoint')).json()) as { models: Array<Record<string, unknown>> };
    expect(novita.models.find((m) => m.sd_name === MODEL)).toMatchObject({ status: 1, base_model: 'SD 2.1', architecture: 'Stable Diffusion 2.x' });
    expect(novita.models.find((m) => m.sd_name === 'old-model.ckpt')).toMatchObject({ status: 0 });
  });

  it('/v1/img2img text-to-image with the fixture pipeline parameters returns diffusers\' image', async () => {
    const res = await api('/v1/img2img', {
      method: 'POST',
      body: JSON.stringify({
        model: MODEL,
        prompt: 'a red fox sitting in fresh snow, morning light',
        negative_prompt: 'lowres, jpeg artifacts',
        seed: 4321,
        steps: 4,
        cfg: 7.5,
        sampler_name: 'euler',
        scheduler: 'simple',
        width: 64,
        height: 64,
        image_url: '',
        response_format: 'b64_json',
      }),
    });
    const body = (await res.json()) as { data: Array<{ b64_json: string }> };
    expect(res.status, JSON.stringify(body)).toBe(200);
    const ours = await sharp(Buffer.from(body.data[0].b64_json, 'base64')).removeAlpha().raw().toBuffer();
    const theirs = await sharp(await readFile(path.join(fixtureDir('checkpoints/sd2-tiny'), 'images/txt2img_v.png'))).removeAlpha().raw().toBuffer();
    expect(ours.length).toBe(theirs.length);
    let worst = 0;
    for (let i = 0; i < ours.length; i++) worst = Math.max(worst, Math.abs(ours[i] - theirs[i]));
    expect(worst).toBeLessThanOrEqual(1);
    // The first use built the conversion cache entry: the GPU service's listing says so now (the edge caches its
    // copy of the list for a few seconds).
    const gpu = await fetch(`${stack.gpuUrl}/v1/models`, { headers: { authorization: `Bearer ${stack.serviceToken}` } });
    const { data } = (await gpu.json()) as { data: Array<Record<string, unknown>> };
    expect(data.find((m) => m.id === MODEL)?.cache).toBe('cached');
  });

  it('a request naming a broken checkpoint is a 503 model_unavailable with the reason', async () => {
    const res = await api('/v1/images/generations', { method: 'POST', body: JSON.stringify({ model: 'broken/cut.safetensors', prompt: 'a fox', size: '64x64' }) });
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(res.status).toBe(503);
    expect(body.error.code).toBe('model_unavailable');
    expect(body.error.message).toMatch(/truncated/);
  });
});
