import { describe, expect, it } from 'vitest';
import type { DrawOptions } from '../../cli/src/draw-options';
import { buildRequestBody } from '../../cli/src/request-body';

const OPTIONS: DrawOptions = {
  prompt: 'a red apple',
  model: null,
  size: null,
  sampler: 'euler',
  scheduler: null,
  steps: null,
  cfgScale: null,
  seed: null,
  negativePrompt: null,
  loras: [],
  vae: null,
  background: null,
  format: 'png',
  output: { kind: 'folder', folder: '.' },
  show: false,
  debug: false,
  apiKey: 'sk-never-in-the-body',
  baseUrl: 'http://127.0.0.1:8787',
};

describe('buildRequestBody', () => {
  it('sends --lora as loras in order and --vae as vae', () => {
    const body = buildRequestBody({ ...OPTIONS, loras: [{ model_name: 'styles/ink', strength: 0.8 }, { model_name: 'detail', strength: 1 }], vae: 'sd-vae-ft-mse' });
    expect(body.loras).toEqual([{ model_name: 'styles/ink', strength: 0.8 }, { model_name: 'detail', strength: 1 }]);
    expect(body.vae).toBe('sd-vae-ft-mse');
    const plain = buildRequestBody(OPTIONS);
    expect('loras' in plain || 'vae' in plain).toBe(false);
  });

  it('sends --background as background, and leaves it out when not given', () => {
    for (const background of ['transparent', 'opaque', 'auto'] as const) {
      expect(buildRequestBody({ ...OPTIONS, background }).background).toBe(background);
    }
    expect('background' in buildRequestBody(OPTIONS)).toBe(false);
  });

  it('sends only what the user set, plus the fixed CLI fields', () => {
    expect(buildRequestBody(OPTIONS)).toEqual({
      prompt: 'a red apple',
      n: 1,
      response_format: 'b64_json',
      output_format: 'png',
      stream: true,
      preview: 'none',
      sample_method: 'euler',
    });
  });

  it('maps every flag to its API field, the model (hf.co references too) unchanged', () => {
    const body = buildRequestBody({
      ...OPTIONS,
      model: 'hf.co/gpustack/stable-diffusion-v3-5-large-turbo-GGUF:FP16',
      size: '768x512',
      sampler: 'dpm++2m',
      scheduler: 'karras',
      steps: 25,
      cfgScale: 0,
      seed: 0,
      negativePrompt: 'blurry',
      format: 'webp',
    });
    expect(body).toMatchObject({
      model: 'hf.co/gpustack/stable-diffusion-v3-5-large-turbo-GGUF:FP16',
      size: '768x512',
      sample_method: 'dpm++2m',
      schedule_method: 'karras',
      sampling_steps: 25,
      cfg_scale: 0,
      seed: 0,
      negative_prompt: 'blurry',
      output_format: 'webp',
    });
    expect(JSON.stringify(body)).not.toContain('sk-never-in-the-body');
  });

  it('drops stream and preview for the non-streaming retry', () => {
    const body = buildRequestBody(OPTIONS, false);
    expect(body.stream).toBe(false);
    expect(body).not.toHaveProperty('preview');
  });
});
