import { describe, expect, it } from 'vitest';
import {
  AsyncExtraSchema,
  AsyncImg2ImgRequestSchema,
  AsyncInpaintingRequestSchema,
  AsyncTxt2ImgRequestSchema,
  type AsyncTaskType,
} from '@image-api/shared/api/async-tasks';
import type { BackendModel } from '@image-api/shared/api/models';
import { ApiError } from '../../../edge/src/lib/api-error';
import { buildAsyncJob } from '../../../edge/src/queue/build-async-job';

const TINY: BackendModel = {
  id: 'tiny-analytic', kind: 'checkpoint', capabilities: ['txt2img', 'img2img', 'inpaint'], native_size: [256, 256], max_pixels: 512 * 512, loaded: true,
};
const XL: BackendModel = { ...TINY, id: 'xl-base', native_size: [1024, 1024], max_pixels: 2048 * 2048 };
const TXT_ONLY: BackendModel = { ...TINY, id: 'txt-only', capabilities: ['txt2img'] };
const XL_LISTED: BackendModel = { ...XL, id: 'sdxl-base', architecture: 'Stable Diffusion XL' };
const XL_REFINER: BackendModel = { ...XL, id: 'sdxl-refiner', architecture: 'Stable Diffusion XL refiner' };
const CATALOG: BackendModel[] = [
  TINY, XL, TXT_ONLY, XL_LISTED, XL_REFINER,
  { id: 'detail-lora', kind: 'lora', capabilities: [], native_size: [512, 512], max_pixels: 512 * 512, loaded: false },
  { id: 'easy-negative', kind: 'textualinversion', capabilities: [], native_size: [512, 512], max_pixels: 512 * 512, loaded: false },
  { id: 'vae-ft-mse', kind: 'vae', capabilities: [], native_size: [512, 512], max_pixels: 512 * 512, loaded: false },
  { id: 'old-lora', kind: 'lora', capabilities: [], native_size: [0, 0], max_pixels: 0, loaded: false, error: 'pickle files are never loaded' },
];

const MATTING: BackendModel = { id: 'rmbg-1.4', kind: 'matting', capabilities: [], native_size: [0, 0], max_pixels: 0, loaded: false };
const WITH_POSTPROCESS: BackendModel[] = [
  ...CATALOG,
  MATTING,
  { id: 'R-ESRGAN 4x+', kind: 'upscaler', capabilities: [], native_size: [0, 0], max_pixels: 0, loaded: false },
  { id: 'broken-x2', kind: 'upscaler', capabilities: [], native_size: [0, 0], max_pixels: 0, loaded: false, error: 'bad sidecar' },
];

const BASE = { model_name: 'tiny-analytic', prompt: 'a red apple', width: 256, height: 256, image_num: 2, steps: 8, guidance_scale: 7, sampler_name: 'DPM++ 2M Karras' };

function build(request: Record<string, unknown>, options: { type?: AsyncTaskType; model?: BackendModel; extra?: Record<string, unknown>; catalog?: BackendModel[] } = {}) {
  const type = options.type ?? 'TXT_TO_IMG';
  const schema = type === 'TXT_TO_IMG' ? AsyncTxt2ImgRequestSchema : type === 'IMG_TO_IMG' ? AsyncImg2ImgRequestSchema : AsyncInpaintingRequestSchema;
  return buildAsyncJob({
    taskType: type,
    request: schema.parse({ ...BASE, ...request }),
    extra: AsyncExtraSchema.parse(options.extra ?? {}),
    model: options.model ?? TINY,
    catalog: options.catalog ?? CATALOG,
    taskId: 'task-1',
    tenant: 'tenant-a',
    pickSeed: () => 4242,
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

describe('buildAsyncJob', () => {
  it('maps Novita fields onto the GenerationJob', () => {
    const job = build({ negative_prompt: 'blurry', seed: 7, clip_skip: 2 }, { extra: { response_image_type: 'jpeg' } });
    expect(job).toMatchObject({
      id: 'task-1', tenant: 'tenant-a', model: 'tiny-analytic', mode: 'txt2img', prompt: 'a red apple', negative_prompt: 'blurry',
      width: 256, height: 256, batch_size: 2, seed: 7, steps: 8, cfg_scale: 7, clip_skip: 2,
      sampler: 'dpmpp_2m', scheduler: 'karras', output: { format: 'jpeg', quality: 90 }, preview: 'none',
    });
    expect(job.strength).toBeUndefined();
  });

  it('loras, embeddings and sd_vae become the job\'s add-ons; prompt tags stay in the prompt for the GPU service', () => {
    const job = build({
      prompt: 'a red apple <lora:detail-lora:0.3>',
      loras: [{ model_name: 'detail-lora', strength: 0.8 }, { model_name: 'detail-lora' }],
      embeddings: [{ model_name: 'easy-negative' }],
      sd_vae: 'vae-ft-mse',
    });
    expect(job.loras).toEqual([{ name: 'detail-lora', strength: 0.8 }, { name: 'detail-lora', strength: 1 }]);
    expect(job.embeddings).toEqual([{ name: 'easy-negative' }]);
    expect(job.vae).toBe('vae-ft-mse');
    expect(job.prompt).toBe('a red apple <lora:detail-lora:0.3>');
    const plain = build({});
    expect([plain.loras, plain.embeddings, plain.vae]).toEqual([undefined, undefined, undefined]);
  });

  it('seed −1 (the default) picks one; an explicit 0 is kept', () => {
    expect(build({}).seed).toBe(4242);
    expect(build({ seed: -1 }).seed).toBe(4242);
    expect(build({ seed: 0 }).seed).toBe(0);
  });

  it('img2img uses A1111 strength semantics; inpainting repaints white', () => {
    const img = build({ strength: 0.4, image_base64: 'x' }, { type: 'IMG_TO_IMG' });
    expect(img).toMatchObject({ mode: 'img2img', strength: 0.4, strength_schedule: 'scaled' });
    const inpaint = build({ image_base64: 'x', mask_image_base64: 'y' }, { type: 'INPAINTING' });
    expect(inpaint).toMatchObject({ mode: 'inpaint', strength: 0.75, strength_schedule: 'scaled', mask_mode: 'white' });
  });

  it('hires_fix maps the upscaler names', () => {
    expect(build({ width: 256, height: 256, hires_fix: { target_width: 512, target_height: 512, upscaler: 'Latent (nearest)' } }).hires_fix).toEqual({
      target_width: 512, target_height: 512, strength: 0.5, upscaler: 'latent-nearest',
    });
  });

  it.each([
    ['an unknown sampler, listing the accepted names', { sampler_name: 'euler_a' }, 'request.sampler_name', /Euler a/],
    ['more pixels than the model allows', { width: 1024, height: 1024 }, 'request.width', /262144/],
    ['a seed whose batch overflows', { seed: '18446744073709551615' }, 'request.seed', /image_num/],
    ['an unknown LoRA', { loras: [{ model_name: 'detail-lora', strength: 0.5 }, { model_name: 'nope' }] }, 'request.loras.1.model_name', /filter.types=lora/],
    ['an unknown embedding', { embeddings: [{ model_name: 'nope' }] }, 'request.embeddings.0.model_name', /textualinversion/],
    ['an unknown VAE', { sd_vae: 'nope' }, 'request.sd_vae', /filter.types=vae/],
    ['a LoRA id that names a VAE', { loras: [{ model_name: 'vae-ft-mse' }] }, 'request.loras.0.model_name', /No LoRA named "vae-ft-mse".*available: detail-lora/],
    ['a LoRA listed with an error, with the reason', { loras: [{ model_name: 'old-lora' }] }, 'request.loras.0.model_name', /"old-lora" cannot be used: pickle files are never loaded/],
    ['an unknown LoRA in a prompt tag', { prompt: 'a red apple <lora:nope:0.5>' }, 'request.prompt', /No LoRA named "nope"/],
    ['a malformed prompt tag', { prompt: 'a red apple <lora:detail-lora:strong>' }, 'request.prompt', /strength must be a number/],
    ['a prompt tag strength out of range', { prompt: 'a red apple <lora:detail-lora:5>' }, 'request.prompt', /within -4\.\.4/],
    ['more than 5 LoRAs counting the prompt tags', { loras: Array.from({ length: 5 }, () => ({ model_name: 'detail-lora' })), prompt: 'a <lora:detail-lora>' }, 'request.loras', /At most 5 LoRAs per request: 6 given \(5 in loras, 1 as <lora:…> tags/],
    ['restore_faces without face models', { restore_faces: true }, 'request.restore_faces', /kind "facerestore" with role "detector"/],
    ['face_restore_fidelity without restore_faces', { face_restore_fidelity: 0.5 }, 'request.face_restore_fidelity', /Only used with request.restore_faces true/],
    ['a refiner on a non-SDXL base', { refiner: { switch_at: 0.8 } }, 'request.refiner', /not an SDXL checkpoint/],
    ['an unknown hires upscaler', { hires_fix: { target_width: 512, target_height: 512, upscaler: 'RealESRGAN_x4plus_anime_6B' } }, 'request.hires_fix.upscaler', /Lanczos/],
    ['a hires target smaller than the image', { hires_fix: { target_width: 128, target_height: 256 } }, 'request.hires_fix.target_width', /at least/],
    ['a hires target over the model limit', { hires_fix: { target_width: 1024, target_height: 1024 } }, 'request.hires_fix.target_width', /262144/],
  ])('refuses %s with a 400 naming the field', (_why, request, param, message) => {
    const error = refusal(() => build(request));
    expect(error.status).toBe(400);
    expect(error.param).toBe(param);
    expect(error.message).toMatch(message);
  });

  it('an SDXL base with a refiner: refiner_switch_at and refiner_model on the job; an unlisted or non-SDXL refiner_model is a 400 naming it', () => {
    const sdxl = { model: XL_LISTED };
    const xl = { model_name: 'sdxl-base', width: 1024, height: 1024 };
    expect(build({ ...xl, refiner: { switch_at: 0.8 }, refiner_model: 'sdxl-refiner' }, sdxl)).toMatchObject({ refiner_switch_at: 0.8, refiner_model: 'sdxl-refiner' });
    // Without refiner_model the GPU service's SDXL_REFINER_MODEL decides.
    const byDefault = build({ ...xl, refiner: { switch_at: 0.5 } }, sdxl);
    expect(byDefault.refiner_switch_at).toBe(0.5);
    expect(byDefault.refiner_model).toBeUndefined();
    expect(build({ ...xl, refiner: { switch_at: 0 }, refiner_model: 'sdxl-refiner' }, sdxl).refiner_switch_at).toBeUndefined();
    for (const [name, message] of [['nope', /filter.types=checkpoint/], ['tiny-analytic', /not an SDXL checkpoint/], ['detail-lora', /No checkpoint named/]] as const) {
      const error = refusal(() => build({ ...xl, refiner: { switch_at: 0.8 }, refiner_model: name }, sdxl));
      expect([error.status, error.param]).toEqual([400, 'request.refiner_model']);
      expect(error.message).toMatch(message);
    }
  });

  it('accepts restore_faces false and a refiner at switch_at 0 (nothing to serve)', () => {
    expect(build({ restore_faces: false, refiner: { switch_at: 0 } }).mode).toBe('txt2img');
  });

  it('restore_faces with a face detector and restorer listed: the job restores faces, with the fidelity given', () => {
    const detector: BackendModel = { id: 'retinaface', kind: 'facerestore', role: 'detector', capabilities: [], native_size: [0, 0], max_pixels: 0, loaded: false };
    const restorer: BackendModel = { id: 'codeformer', kind: 'facerestore', role: 'restorer', capabilities: [], native_size: [0, 0], max_pixels: 0, loaded: false };
    expect(build({ restore_faces: true, face_restore_fidelity: 0.7 }, { catalog: [...CATALOG, detector, restorer] })).toMatchObject({ restore_faces: true, face_restore_fidelity: 0.7 });
    const job = build({ restore_faces: true }, { catalog: [...CATALOG, detector, restorer] });
    expect([job.restore_faces, job.face_restore_fidelity]).toEqual([true, undefined]);
    expect(build({}, { catalog: [...CATALOG, detector, restorer] }).restore_faces).toBeUndefined();
    // Only a detector, or a restorer listed with an error: the missing role is named.
    expect(refusal(() => build({ restore_faces: true }, { catalog: [...CATALOG, detector] })).message).toMatch(/role "restorer"/);
    const broken = refusal(() => build({ restore_faces: true }, { catalog: [...CATALOG, detector, { ...restorer, error: 'bad sidecar' }] }));
    expect([broken.status, broken.param]).toEqual([400, 'request.restore_faces']);
    expect(broken.message).toMatch(/role "restorer"/);
  });

  it('transparent background: says whether the format, SDXL or the matting model is missing', () => {
    expect(refusal(() => build({ enable_transparent_background: true }, { extra: { response_image_type: 'jpeg' } })).message).toMatch(/png.*webp/);
    expect(refusal(() => build({ enable_transparent_background: true })).message).toMatch(/SDXL/);
    const xl = refusal(() => build({ model_name: 'xl-base', enable_transparent_background: true }, { model: XL }));
    expect([xl.status, xl.param]).toEqual([400, 'request.enable_transparent_background']);
    expect(xl.message).toMatch(/kind "matting"/);
    // A matting model listed with an error does not count.
    const broken = { ...MATTING, error: 'its sidecar: std: std values must not be 0' };
    expect(refusal(() => build({ model_name: 'xl-base', enable_transparent_background: true }, { model: XL, catalog: [...CATALOG, broken] })).message).toMatch(/kind "matting"/);
  });

  it('transparent background on an SDXL checkpoint with a matting model listed: background "transparent", png or webp', () => {
    for (const format of ['png', 'webp']) {
      const job = build({ model_name: 'xl-base', enable_transparent_background: true }, { model: XL, catalog: WITH_POSTPROCESS, extra: { response_image_type: format } });
      expect(job).toMatchObject({ background: 'transparent', output: { format } });
    }
    expect(build({ model_name: 'xl-base' }, { model: XL, catalog: WITH_POSTPROCESS }).background).toBeUndefined();
    expect(refusal(() => build({ enable_transparent_background: true }, { catalog: WITH_POSTPROCESS })).message).toMatch(/SDXL/);
  });

  it('hires_fix.upscaler names an upscaler model by id; an unknown name lists the built-in names and the models', () => {
    const hires = (upscaler: string) => ({ hires_fix: { target_width: 512, target_height: 512, upscaler } });
    expect(build(hires('R-ESRGAN 4x+'), { catalog: WITH_POSTPROCESS }).hires_fix).toEqual({
      target_width: 512, target_height: 512, strength: 0.5, upscaler: 'model', upscale_model: 'R-ESRGAN 4x+',
    });
    expect(build(hires('Lanczos'), { catalog: WITH_POSTPROCESS }).hires_fix).toMatchObject({ upscaler: 'lanczos' });
    const unknown = refusal(() => build(hires('ESRGAN_4x'), { catalog: WITH_POSTPROCESS }));
    expect([unknown.status, unknown.param]).toEqual([400, 'request.hires_fix.upscaler']);
    expect(unknown.message).toBe('Unknown upscaler "ESRGAN_4x". Available: Latent, Latent (nearest), Lanczos, R-ESRGAN 4x+.');
    // A matting model is no upscaler.
    expect(refusal(() => build(hires('rmbg-1.4'), { catalog: WITH_POSTPROCESS })).param).toBe('request.hires_fix.upscaler');
    expect(refusal(() => build(hires('broken-x2'), { catalog: WITH_POSTPROCESS })).message).toMatch(/"broken-x2" cannot be used: bad sidecar/);
  });

  it('refuses a model without the endpoint capability, and hires_fix for inpainting', () => {
    expect(refusal(() => build({ image_base64: 'x' }, { type: 'IMG_TO_IMG', model: TXT_ONLY })).param).toBe('request.model_name');
    const error = refusal(() => build({ image_base64: 'x', mask_image_base64: 'y', hires_fix: { target_width: 512, target_height: 512 } }, { type: 'INPAINTING' }));
    expect(error.param).toBe('request.hires_fix');
  });
});
