/**
 * End to end through the public API with flow-matching models: the fixtures' tiny FLUX.1-schnell and SD 3.5
 * diffusers folders and city96's Q8_0 FLUX transformer with a sidecar base dropped into MODELS_DIR/checkpoints.
 * The listings (/v1/models, /v3/model) show what was detected; /v1/img2img (ComfyUI names) generates with the
 * flow samplers, the same request twice gives the same pixels, the receipt names what ran; a sampler or schedule
 * that does not apply to flow models is a 400 naming the field.
 */
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureDir, hasFixture } from '../helpers/checkpoint-fixtures';
import { addFixtureDiffusersFolder, makeModelsDir } from '../helpers/checkpoint-models-dir';
import { startStack, type Stack } from '../helpers/stack';

const available = hasFixture('checkpoints-dit') && hasFixture('clip-tokenizer');
const FLUX = 'flux/schnell-tiny';
const SD35 = 'sd35/sd3.5-tiny';
const GGUF = 'flux/schnell-tiny-Q8_0.gguf';
let stack: Stack;
let modelsDir: string | undefined;

beforeAll(async () => {
  if (!available) return;
  modelsDir = await makeModelsDir('e2e-flow-');
  await addFixtureDiffusersFolder(modelsDir, 'checkpoints-dit/flux-schnell', FLUX);
  await addFixtureDiffusersFolder(modelsDir, 'checkpoints-dit/sd3.5', SD35);
  const gguf = path.join(modelsDir, 'checkpoints', GGUF);
  await mkdir(path.dirname(gguf), { recursive: true });
  await copyFile(path.join(fixtureDir('checkpoints-dit/flux-schnell'), 'flux1-schnell-tiny-Q8_0.gguf'), gguf);
  const transformer = JSON.parse(await readFile(path.join(fixtureDir('checkpoints-dit/flux-schnell'), 'diffusers/transformer/config.json'), 'utf8')) as Record<string, unknown>;
  await writeFile(gguf.replace(/\.gguf$/, '.json'), JSON.stringify({ base: FLUX, transformer: { axes_dims_rope: transformer.axes_dims_rope } }));
  stack = await startStack({ modelsDir });
}, 240_000);
afterAll(async () => {
  await stack?.stop();
  if (modelsDir) await rm(modelsDir, { recursive: true, force: true });
});

const api = (route: string, init: RequestInit = {}) =>
  fetch(`${stack.baseUrl}${route}`, { ...init, headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });

const comfy = (overrides: Record<string, unknown>) =>
  api('/v1/img2img', {
    method: 'POST',
    body: JSON.stringify({ prompt: 'a lighthouse at dusk', seed: 5, steps: 4, cfg: 1, sampler_name: 'euler', scheduler: 'simple', width: 64, height: 64, image_url: '', response_format: 'b64_json', ...overrides }),
  });

describe.skipIf(!available)('flow-matching models through the public API', () => {
  it('GET /v1/models and /v3/model list FLUX.1-schnell, SD 3.x and the GGUF transformer with what was detected', async () => {
    const { data } = (await (await api('/v1/models')).json()) as { data: Array<Record<string, unknown>> };
    expect(data.find((m) => m.id === FLUX)).toMatchObject({ kind: 'checkpoint', format: 'diffusers', architecture: 'FLUX.1-schnell', prediction_type: 'flow', capabilities: ['txt2img', 'img2img', 'inpaint'] });
    expect(data.find((m) => m.id === FLUX)?.samplers).toEqual(['euler', 'heun', 'heunpp2', 'dpm_2', 'lms', 'ipndm', 'ipndm_v', 'deis']);
    expect(data.find((m) => m.id === SD35)).toMatchObject({ architecture: 'Stable Diffusion 3.x', prediction_type: 'flow', stored_dtype: 'F16' });
    expect(data.find((m) => m.id === GGUF)).toMatchObject({ format: 'gguf', architecture: 'FLUX.1-schnell', stored_dtype: 'Q8_0', gguf_architecture: 'flux' });
    const novita = (await (await api('/v3/model?filter.types=checkpoint')).json()) as { models: Array<Record<string, unknown>> };
    expect(novita.models.find((m) => m.sd_name === FLUX)).toMatchObject({ status: 1, base_model: 'FLUX.1', architecture: 'FLUX.1-schnell' });
    expect(novita.models.find((m) => m.sd_name === SD35)).toMatchObject({ status: 1, base_model: 'SD 3' });
  });

  for (const [model, extra] of [
    [FLUX, {}],
    [GGUF, {}],
    [SD35, { cfg: 4.5, negative_prompt: 'blurry' }],
  ] as const) {
    it(`/v1/img2img text-to-image with ${model}: an image of the size asked, the same pixels for the same request, a receipt`, async () => {
      const first = await comfy({ model, ...extra });
      const body = (await first.json()) as { data: Array<{ b64_json: string }>; receipt?: Record<string, unknown> };
      expect(first.status, JSON.stringify(body)).toBe(200);
      const again = (await (await comfy({ model, ...extra })).json()) as { data: Array<{ b64_json: string }> };
      const pixels = async (b64: string) => sharp(Buffer.from(b64, 'base64')).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      const a = await pixels(body.data[0].b64_json);
      const b = await pixels(again.data[0].b64_json);
      expect(a.info).toMatchObject({ width: 64, height: 64 });
      expect(a.data.equals(b.data)).toBe(true);
      expect(body.receipt).toMatchObject({ model, seed: 5, steps: 4, sampler: 'euler', scheduler: 'simple' });
      expect(String(body.receipt?.model_hash)).toMatch(/^[0-9a-f]{64}$/);
    });
  }

  it('a sampler that does not apply to flow models is a 400 naming the field', async () => {
    const ancestral = await comfy({ model: FLUX, sampler_name: 'euler_ancestral' });
    const a = (await ancestral.json()) as { error: { message: string; param?: string } };
    expect(ancestral.status, JSON.stringify(a)).toBe(400);
    expect(a.error.message).toMatch(/does not apply to FLUX\.1 \(flow matching\)/);
    expect(a.error.param).toMatch(/sampler/);
    const schedule = await comfy({ model: FLUX, scheduler: 'ays' });
    const s = (await schedule.json()) as { error: { message: string; param?: string } };
    expect(schedule.status, JSON.stringify(s)).toBe(400);
    expect(s.error.param).toMatch(/scheduler/);
  });
});
