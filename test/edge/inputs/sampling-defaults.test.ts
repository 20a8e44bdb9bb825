import { describe, expect, it } from 'vitest';
import { AsyncExtraSchema, AsyncTxt2ImgRequestSchema } from '@image-api/shared/api/async-tasks';
import { Img2ImgRequestSchema } from '@image-api/shared/api/img2img';
import type { BackendModel } from '@image-api/shared/api/models';
import { ImageGenerationRequestSchema } from '@image-api/shared/api/openai-images';
import { buildOpenAiImageJob } from '../../../edge/src/inputs/image-job';
import { ApiError } from '../../../edge/src/lib/api-error';
import { buildAsyncJob } from '../../../edge/src/queue/build-async-job';
import { buildComfyJob } from '../../../edge/src/routes/img2img';
import { buildGenerationJob } from '../../../edge/src/routes/openai-images';

const FLOW = { kind: 'checkpoint', capabilities: ['txt2img', 'img2img', 'inpaint'], native_size: [1024, 1024], max_pixels: 1024 * 1024, loaded: false, prediction_type: 'flow' } as const;
const SCHNELL: BackendModel = { ...FLOW, id: 'flux/flux1-schnell.safetensors', architecture: 'FLUX.1-schnell', capabilities: [...FLOW.capabilities], native_size: [1024, 1024] };
const DEV: BackendModel = { ...SCHNELL, id: 'flux/flux1-dev.gguf', architecture: 'FLUX.1-dev' };
const SD35_LARGE: BackendModel = { ...SCHNELL, id: 'sd3.5/sd3.5_large.safetensors', architecture: 'Stable Diffusion 3.5 Large' };
const SD35_TURBO: BackendModel = { ...SD35_LARGE, id: 'sd3.5/sd3.5_large_turbo.safetensors', variant: 'turbo' };
const SD35_MEDIUM: BackendModel = { ...SCHNELL, id: 'sd3.5/sd3.5_medium.safetensors', architecture: 'Stable Diffusion 3.5 Medium' };
const SD15: BackendModel = { id: 'sd15.safetensors', kind: 'checkpoint', capabilities: ['txt2img', 'img2img', 'inpaint'], native_size: [512, 512], max_pixels: 1024 * 1024, loaded: false, architecture: 'Stable Diffusion 1.x' };

const ids = { taskId: 't', tenant: 'a' };
const sampling = (job: { steps: number; cfg_scale?: number; sampler?: string; scheduler?: string; guidance?: number }) => ({
  steps: job.steps,
  cfg_scale: job.cfg_scale,
  sampler: job.sampler,
  scheduler: job.scheduler,
  guidance: job.guidance,
});

function openai(model: BackendModel, body: Record<string, unknown> = {}) {
  return buildGenerationJob({ request: ImageGenerationRequestSchema.parse({ prompt: 'a cat', size: '512x512', ...body }), model, ...ids, pickSeed: () => 1 });
}
function comfy(model: BackendModel, body: Record<string, unknown> = {}) {
  return buildComfyJob(Img2ImgRequestSchema.parse(body), model, null, ids);
}
function novita(model: BackendModel, body: Record<string, unknown> = {}) {
  return buildAsyncJob({
    taskType: 'TXT_TO_IMG',
    request: AsyncTxt2ImgRequestSchema.parse({ model_name: model.id, prompt: 'a cat', width: 512, height: 512, image_num: 1, ...body }),
    extra: AsyncExtraSchema.parse({}),
    model,
    catalog: [model],
    ...ids,
    pickSeed: () => 1,
  });
}
function refusal(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ApiError) return error;
    throw error;
  }
  throw new Error('no error');
}

describe('per-model defaults when the request leaves sampling unset', () => {
  it('FLUX.1-schnell: 4 steps, cfg 1, euler + simple in every API style', () => {
    const want = { steps: 4, cfg_scale: 1, sampler: 'euler', scheduler: 'simple', guidance: undefined };
    expect(sampling(openai(SCHNELL))).toEqual(want);
    expect(sampling(comfy(SCHNELL))).toEqual(want);
    expect(sampling(novita(SCHNELL))).toEqual(want);
  });

  it('FLUX.1-dev: 50 steps, cfg 1 and distilled guidance 3.5; a request guidance wins', () => {
    expect(sampling(openai(DEV))).toEqual({ steps: 50, cfg_scale: 1, sampler: 'euler', scheduler: 'simple', guidance: 3.5 });
    expect(openai(DEV, { guidance: 2 }).guidance).toBe(2);
    expect(comfy(DEV).guidance).toBe(3.5);
    expect(novita(DEV).guidance).toBe(3.5);
  });

  it('SD 3.5 Large 28 / 3.5, Large Turbo 4 / 1, Medium 40 / 4.5', () => {
    expect(sampling(openai(SD35_LARGE))).toMatchObject({ steps: 28, cfg_scale: 3.5 });
    expect(sampling(comfy(SD35_TURBO))).toMatchObject({ steps: 4, cfg_scale: 1 });
    expect(sampling(novita(SD35_MEDIUM))).toMatchObject({ steps: 40, cfg_scale: 4.5, sampler: 'euler', scheduler: 'simple' });
  });

  it('fields the request sets are kept, each on its own', () => {
    expect(sampling(openai(SCHNELL, { sampling_steps: 8 }))).toMatchObject({ steps: 8, cfg_scale: 1, sampler: 'euler', scheduler: 'simple' });
    expect(sampling(openai(SCHNELL, { cfg_scale: 3.5 }))).toMatchObject({ steps: 4, cfg_scale: 3.5 });
    expect(sampling(openai(SCHNELL, { sample_method: 'heun' }))).toMatchObject({ sampler: 'heun', scheduler: 'simple' });
    expect(sampling(openai(SCHNELL, { schedule_method: 'karras' }))).toMatchObject({ sampler: 'euler', scheduler: 'karras' });
    expect(sampling(openai(SCHNELL, { quality: 'high' }))).toMatchObject({ steps: 20 });
    expect(sampling(comfy(SD35_LARGE, { steps: 10, cfg: 5, sampler_name: 'heun', scheduler: 'beta' }))).toMatchObject({ steps: 10, cfg_scale: 5, sampler: 'heun', scheduler: 'beta' });
    // A1111's combined name decides the schedule as well.
    expect(sampling(novita(SCHNELL, { sampler_name: 'Euler', steps: 6, guidance_scale: 2 }))).toMatchObject({ steps: 6, cfg_scale: 2, sampler: 'euler', scheduler: 'normal' });
  });

  it('unknown names are still a 400 naming the field', () => {
    expect(refusal(() => openai(SCHNELL, { schedule_method: 'nope' })).param).toBe('schedule_method');
    expect(refusal(() => comfy(SCHNELL, { sampler_name: 'nope' })).param).toBe('sampler_name');
    expect(refusal(() => novita(SCHNELL, { sampler_name: 'nope' })).param).toBe('request.sampler_name');
  });

  it('models without a row keep each API style defaults', () => {
    expect(sampling(openai(SD15))).toEqual({ steps: 10, cfg_scale: 4.5, sampler: 'euler_ancestral', scheduler: 'normal', guidance: undefined });
    expect(sampling(comfy(SD15))).toEqual({ steps: 20, cfg_scale: 8, sampler: 'euler', scheduler: 'normal', guidance: undefined });
  });

  it('/v3/async: Novita requires steps, guidance_scale and sampler_name for a model without a row', () => {
    const full = { steps: 6, guidance_scale: 7, sampler_name: 'Euler a' };
    for (const field of ['steps', 'guidance_scale', 'sampler_name'] as const) {
      const { [field]: _left, ...rest } = full;
      const error = refusal(() => novita(SD15, rest));
      expect({ status: error.status, param: error.param, code: error.code }).toEqual({ status: 400, param: `request.${field}`, code: 'missing_parameter' });
    }
    expect(sampling(novita(SD15, full))).toMatchObject({ steps: 6, cfg_scale: 7, sampler: 'euler_ancestral' });
  });

  it('edits / variations (buildOpenAiImageJob) use the same defaults', async () => {
    const source = { bytes: new Uint8Array([1, 2, 3]), width: 512, height: 512, mimeType: 'image/png', source: 'base64' } as const;
    const job = buildOpenAiImageJob({ ...ids, model: SCHNELL, source: source as never, prompt: 'x', negative_prompt: '', n: 1, size: { width: 512, height: 512 }, strength: 0.6, output_format: 'png', pickSeed: () => 1 });
    expect(sampling(job)).toEqual({ steps: 4, cfg_scale: 1, sampler: 'euler', scheduler: 'simple', guidance: undefined });
  });
});
