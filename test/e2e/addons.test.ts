/**
 * LoRAs, embeddings and VAEs end to end through the public API (edge + GPU service, as `npm start` runs them): a
 * user drops the fixtures' tiny SD 1.x checkpoint and its LoRA (kohya, kohya with LDM module names, diffusers/PEFT:
 * three files of the same LoRA), embedding and standalone VAE into MODELS_DIR. The listings show them with the base
 * model they fit; a LoRA named in `loras`, as a `<lora:…>` prompt tag or in the async API changes the image, the
 * three formats give the same image, strength 0 gives the plain one, the receipt and the PNG's `parameters` carry
 * the file hash; a LoRA matching no layer of the model is a 400 naming the request field.
 *
 * The fixtures' diffusers references for the LoRA, embedding and VAE pipelines are 48×64, below the public API's
 * 64-pixel minimum side: test/addons/addon-jobs.test.ts checks those pixels through the GPU service's own job path.
 */
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AsyncModelList, AsyncTaskResult } from '@image-api/shared/api/async-tasks';
import { writeSafetensors } from '../../gpu-service/src/weights/safetensors-writer';
import { fixtureDir, hasFixture } from '../helpers/checkpoint-fixtures';
import { addFixtureCheckpoint, makeModelsDir } from '../helpers/checkpoint-models-dir';
import { startStack, type Stack } from '../helpers/stack';

const available = hasFixture('checkpoints') && hasFixture('clip-tokenizer');
const MODEL = 'sd1.5/tiny.safetensors';
const FIXTURE = 'checkpoints/sd15-tiny';
let stack: Stack;

beforeAll(async () => {
  if (!available) return;
  const modelsDir = await makeModelsDir('e2e-addons-');
  await addFixtureCheckpoint(modelsDir, FIXTURE, 'sd15-tiny.safetensors', MODEL);
  const put = async (from: string, to: string) => {
    await mkdir(path.dirname(path.join(modelsDir, to)), { recursive: true });
    await copyFile(path.join(fixtureDir(FIXTURE), from), path.join(modelsDir, to));
  };
  await put('lora/tiny-lora.safetensors', 'loras/tiny-lora.safetensors');
  await put('lora/tiny-lora-ldm-names.safetensors', 'loras/ldm/tiny-lora.safetensors');
  await put('lora/tiny-lora-diffusers.safetensors', 'loras/peft/tiny-lora.safetensors');
  await put('embeddings/tiny-style.safetensors', 'embeddings/tiny-style.safetensors');
  await put('vae/tiny-vae-ft-mse.safetensors', 'vae/tiny-vae-ft-mse.safetensors');
  // A kohya file whose modules exist in no SD model: applying it would silently do nothing.
  await writeSafetensors(path.join(modelsDir, 'loras/elsewhere.safetensors'), [
    { key: 'lora_unet_no_such_block.lora_down.weight', dtype: 'F32', shape: [2, 8], values: () => new Float32Array(16).fill(0.5) },
    { key: 'lora_unet_no_such_block.lora_up.weight', dtype: 'F32', shape: [8, 2], values: () => new Float32Array(16).fill(0.5) },
  ]);
  stack = await startStack({ modelsDir });
}, 240_000);
afterAll(async () => {
  await stack?.stop();
});

const api = (route: string, init: RequestInit = {}) =>
  fetch(`${stack.baseUrl}${route}`, { ...init, headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });

/** The fixture pipeline's prompt and sampling (k-diffusion Euler over ComfyUI's "simple" 4-step schedule) at 64×64. */
const BASE = {
  model: MODEL,
  prompt: 'a photograph of an astronaut riding a horse on the moon',
  negative_prompt: 'blurry, low quality, watermark',
  seed: 1234,
  steps: 4,
  cfg: 7.5,
  sampler_name: 'euler',
  scheduler: 'simple',
  width: 64,
  height: 64,
  image_url: '',
  response_format: 'b64_json',
};

interface Img2ImgAnswer {
  data: Array<{ b64_json: string }>;
  receipt: { prompt: string; loras?: Array<{ name: string; strength: number; hash: string }>; embeddings?: unknown; vae?: unknown };
}

async function img2img(change: Record<string, unknown>): Promise<{ png: Buffer; rgb: Buffer; body: Img2ImgAnswer }> {
  const res = await api('/v1/img2img', { method: 'POST', body: JSON.stringify({ ...BASE, ...change }) });
  const body = (await res.json()) as Img2ImgAnswer;
  expect(res.status, JSON.stringify(body)).toBe(200);
  const png = Buffer.from(body.data[0].b64_json, 'base64');
  return { png, rgb: await sharp(png).removeAlpha().raw().toBuffer(), body };
}

function largestDifference(a: Buffer, b: Buffer): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

describe.skipIf(!available)('LoRAs, embeddings and VAEs through the public API', () => {
  it('the listings show each add-on by its relative id with the base model it fits', async () => {
    const { data } = (await (await api('/v1/models')).json()) as { data: Array<Record<string, unknown>> };
    for (const id of ['tiny-lora', 'ldm/tiny-lora', 'peft/tiny-lora']) expect(data.find((m) => m.kind === 'lora' && m.id === id), id).toBeDefined();
    expect(data.find((m) => m.id === 'tiny-style')).toMatchObject({ kind: 'textualinversion', capabilities: [] });
    expect(data.find((m) => m.id === 'tiny-vae-ft-mse')).toMatchObject({ kind: 'vae', architecture: expect.stringMatching(/4 latent channels/) });
    const novita = (await (await api('/v3/model?filter.types=lora,vae')).json()) as AsyncModelList;
    expect(novita.models.map((m) => m.sd_name).sort()).toEqual(['elsewhere', 'ldm/tiny-lora', 'peft/tiny-lora', 'tiny-lora', 'tiny-vae-ft-mse']);
    expect(novita.models.find((m) => m.sd_name === 'tiny-vae-ft-mse')).toMatchObject({ type: 'vae', status: 1, base_model: 'SD 1.5, SD 2.1, SDXL' });
  });

  it('a LoRA changes the image; its three file formats and the prompt tag give the same one; strength 0 gives the plain one', async () => {
    const plain = await img2img({});
    const kohya = await img2img({ loras: [{ model_name: 'tiny-lora', strength: 1 }] });
    expect(largestDifference(plain.rgb, kohya.rgb), 'the LoRA must change the pixels').toBeGreaterThan(16);
    const ldm = await img2img({ loras: [{ model_name: 'ldm/tiny-lora', strength: 1 }] });
    expect(largestDifference(kohya.rgb, ldm.rgb)).toBeLessThanOrEqual(1);
    const tagged = await img2img({ prompt: `${BASE.prompt} <lora:peft/tiny-lora:1>` });
    expect(largestDifference(kohya.rgb, tagged.rgb)).toBeLessThanOrEqual(1);
    expect(tagged.body.receipt.prompt).toBe(BASE.prompt);
    const zero = await img2img({ loras: [{ model_name: 'tiny-lora', strength: 0 }] });
    expect(largestDifference(plain.rgb, zero.rgb)).toBeLessThanOrEqual(1);
    const weaker = await img2img({ loras: [{ model_name: 'tiny-lora', strength: 0.6 }] });
    expect(largestDifference(kohya.rgb, weaker.rgb)).toBeGreaterThan(1);

    expect(kohya.body.receipt.loras).toEqual([{ name: 'tiny-lora', strength: 1, hash: expect.stringMatching(/^[0-9a-f]{64}$/) }]);
    const comments = (await sharp(kohya.png).metadata()).comments ?? [];
    const parameters = comments.find((c) => c.keyword === 'parameters')?.text ?? '';
    expect(parameters).toContain(kohya.body.receipt.loras![0].hash);
  });

  it('an embedding and a VAE override through the OpenAI-style generations route change the image and are receipted', async () => {
    const generate = async (change: Record<string, unknown>) => {
      const res = await api('/v1/images/generations', {
        method: 'POST',
        body: JSON.stringify({ model: MODEL, prompt: 'a portrait of a cat in the style of tiny-style, soft light', size: '64x64', seed: 7, sample_method: 'euler', sampling_steps: 3, response_format: 'b64_json', ...change }),
      });
      const body = (await res.json()) as { data: Array<{ b64_json: string }>; receipt: Img2ImgAnswer['receipt'] };
      expect(res.status, JSON.stringify(body)).toBe(200);
      return { rgb: await sharp(Buffer.from(body.data[0].b64_json, 'base64')).removeAlpha().raw().toBuffer(), receipt: body.receipt };
    };
    const plain = await generate({});
    const withEmbedding = await generate({ embeddings: [{ model_name: 'tiny-style' }] });
    expect(largestDifference(plain.rgb, withEmbedding.rgb)).toBeGreaterThan(1);
    expect(withEmbedding.receipt.embeddings).toEqual([{ name: 'tiny-style', hash: expect.stringMatching(/^[0-9a-f]{64}$/) }]);
    const withVae = await generate({ vae: 'tiny-vae-ft-mse' });
    expect(largestDifference(plain.rgb, withVae.rgb)).toBeGreaterThan(1);
    expect(withVae.receipt.vae).toEqual({ name: 'tiny-vae-ft-mse', hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
  });

  it('the async API runs loras and sd_vae and records them in the receipt', async () => {
    const submit = await api('/v3/async/txt2img', {
      method: 'POST',
      body: JSON.stringify({
        extra: { response_image_type: 'png' },
        request: {
          model_name: MODEL, prompt: 'an astronaut <lora:peft/tiny-lora:0.6>', width: 128, height: 128, image_num: 1, steps: 3, guidance_scale: 7.5,
          sampler_name: 'Euler', seed: 5, loras: [{ model_name: 'tiny-lora', strength: 0.4 }], sd_vae: 'tiny-vae-ft-mse',
        },
      }),
    });
    const { task_id: taskId } = (await submit.json()) as { task_id: string };
    expect(submit.status).toBe(200);
    const deadline = Date.now() + 120_000;
    let result: AsyncTaskResult;
    for (;;) {
      result = (await (await api(`/v3/async/task-result?task_id=${taskId}`)).json()) as AsyncTaskResult;
      if (result.task.status === 'TASK_STATUS_SUCCEED' || result.task.status === 'TASK_STATUS_FAILED') break;
      if (Date.now() > deadline) throw new Error(`task still ${result.task.status}:\n${stack.output().slice(-3000)}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(result.task.status, result.task.reason).toBe('TASK_STATUS_SUCCEED');
    const receipt = result.extra.debug_info.receipt as Img2ImgAnswer['receipt'];
    expect(receipt.loras?.map((l) => [l.name, l.strength])).toEqual([['tiny-lora', 0.4], ['peft/tiny-lora', 0.6]]);
    expect(receipt.vae).toMatchObject({ name: 'tiny-vae-ft-mse' });
  });

  it('a LoRA that matches no layer of the model, and an unknown one, are 400s naming the request field', async () => {
    const res = await api('/v1/images/generations', { method: 'POST', body: JSON.stringify({ model: MODEL, prompt: 'a fox', size: '64x64', loras: [{ model_name: 'tiny-lora' }, { model_name: 'elsewhere' }] }) });
    const body = (await res.json()) as { error: { param: string; message: string } };
    expect(res.status, JSON.stringify(body)).toBe(400);
    expect(body.error.param).toBe('loras.1.model_name');
    expect(body.error.message).toMatch(/matches no layer of this model/);
    const unknown = await api('/v3/async/txt2img', {
      method: 'POST',
      body: JSON.stringify({ request: { model_name: MODEL, prompt: 'a fox', width: 128, height: 128, image_num: 1, steps: 2, guidance_scale: 7, sampler_name: 'Euler', loras: [{ model_name: 'tiny-lora' }, { model_name: 'tiny_lora' }] } }),
    });
    const refusal = (await unknown.json()) as { error: { param: string; message: string } };
    expect(unknown.status).toBe(400);
    expect(refusal.error.param).toBe('request.loras.1.model_name');
    expect(refusal.error.message).toMatch(/No LoRA named "tiny_lora".*available: .*tiny-lora/);
  });
});
