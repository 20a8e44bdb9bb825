/**
 * Add-ons through the GPU service: LoRAs, embeddings and a VAE override dropped into MODELS_DIR/loras,
 * embeddings, vae are listed with the architecture they fit, resolve from a job's fields (and `<lora:…>` prompt
 * tags), reproduce diffusers' pipeline PNGs on the tiny SD 1.x model, end up in the receipt with their hashes,
 * and bad ones are refused naming the field.
 */
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GenerationJobSchema, type GenerationJob } from '@image-api/shared/generation-job';
import { buildApp } from '../../gpu-service/src/app';
import { resolveJobAddons } from '../../gpu-service/src/addons/job-addons';
import { generate } from '../../gpu-service/src/diffusion/pipelines/generate';
import type { ModelRegistry } from '../../gpu-service/src/models/model-registry';
import { writeSafetensors } from '../../gpu-service/src/weights/safetensors-writer';
import { fixtureDir, hasFixture, openFixtureFamily, type FixtureFamily } from '../helpers/checkpoint-fixtures';
import { addFixtureCheckpoint, makeModelsDir } from '../helpers/checkpoint-models-dir';

const available = hasFixture('checkpoints') && hasFixture('clip-tokenizer');
const TOKEN = 'addon-jobs-token-0123456789abc';
const auth = { authorization: `Bearer ${TOKEN}` };
const MODEL = 'sd1.5/tiny.safetensors';
let modelsDir: string;
let app: FastifyInstance;
let family: FixtureFamily;

beforeAll(async () => {
  if (!available) return;
  family = await openFixtureFamily('checkpoints/sd15-tiny');
  modelsDir = await makeModelsDir('addon-jobs-');
  await addFixtureCheckpoint(modelsDir, 'checkpoints/sd15-tiny', 'sd15-tiny.safetensors', MODEL);
  const put = async (from: string, to: string) => {
    await mkdir(path.dirname(path.join(modelsDir, to)), { recursive: true });
    await copyFile(path.join(fixtureDir('checkpoints/sd15-tiny'), from), path.join(modelsDir, to));
  };
  await put('lora/tiny-lora.safetensors', 'loras/tiny-lora.safetensors');
  await put('lora/tiny-lora-diffusers.safetensors', 'loras/peft/tiny-lora.safetensors');
  await put('embeddings/tiny-style-diffusers.safetensors', 'embeddings/tiny-style-diffusers.safetensors');
  await put('vae/tiny-vae-ft-mse.safetensors', 'vae/tiny-vae-ft-mse.safetensors');
  await writeFile(path.join(modelsDir, 'loras/old.pt'), Buffer.from('PK'));
  await writeSafetensors(path.join(modelsDir, 'loras/elsewhere.safetensors'), [
    { key: 'lora_unet_no_such_block.lora_down.weight', dtype: 'F32', shape: [2, 8], values: () => new Float32Array(16) },
    { key: 'lora_unet_no_such_block.lora_up.weight', dtype: 'F32', shape: [8, 2], values: () => new Float32Array(16) },
  ]);
  app = await buildApp({ modelsDir, serviceToken: TOKEN, executionProviders: ['cpu'], intraOpNumThreads: 1, queueMax: 8, logger: false, modelWarmUp: false });
}, 60_000);
afterAll(async () => {
  await app?.close();
  await family?.reference.close();
  if (modelsDir) await rm(modelsDir, { recursive: true, force: true });
});

/** The fixture pipeline job (48×64, below the HTTP API's 64-pixel minimum, so it runs through the registry). */
function fixtureJob(caseId: string, extra: Partial<GenerationJob>): GenerationJob {
  const c = family.case(caseId);
  const job = GenerationJobSchema.parse({ id: caseId, model: MODEL, prompt: c.prompt, negative_prompt: c.negative_prompt, width: 64, height: 64, seed: c.noise_seed, steps: 4, sampler: 'euler', scheduler: 'simple', cfg_scale: c.guidance_scale, ...extra });
  return { ...job, width: c.width as number, height: c.height as number };
}

async function expectFixturePng(caseId: string, job: GenerationJob): Promise<void> {
  const registry = (app as unknown as { models: ModelRegistry }).models;
  const { job: resolved, addons } = await resolveJobAddons(job, registry.addons);
  const lease = await registry.acquire(MODEL, addons);
  try {
    const [image] = await generate(lease.model, resolved);
    const theirs = await sharp(path.join(family.dir, family.case(caseId).png as string)).removeAlpha().raw().toBuffer();
    let worst = 0;
    for (let i = 0; i < theirs.length; i++) worst = Math.max(worst, Math.abs(theirs[i] - image.rgb[i]));
    expect(worst, `${caseId}: largest channel difference`).toBeLessThanOrEqual(1);
  } finally {
    lease.release();
  }
}

const job = (over: Record<string, unknown>) => ({ id: `a-${Math.random().toString(36).slice(2)}`, model: MODEL, prompt: 'a fox', width: 64, height: 64, seed: 3, steps: 2, sampler: 'euler', scheduler: 'simple', ...over });

describe.skipIf(!available)('add-ons on the GPU service', () => {
  it('lists LoRAs, embeddings and VAEs by relative id with the architecture they fit, and unusable ones with why', async () => {
    const rows = (await app.inject({ method: 'GET', url: '/v1/models', headers: auth })).json().data as Array<Record<string, unknown>>;
    const byId = (kind: string, id: string) => rows.find((r) => r.kind === kind && r.id === id);
    expect(byId('lora', 'tiny-lora')).toMatchObject({ architecture: 'Stable Diffusion 1.x' });
    expect(byId('lora', 'peft/tiny-lora')).toBeDefined();
    expect(byId('textualinversion', 'tiny-style-diffusers')).toBeDefined();
    expect(byId('vae', 'tiny-vae-ft-mse')?.architecture).toMatch(/4 latent channels/);
    expect(String(byId('lora', 'old')?.error)).toMatch(/pickle files are never loaded/);
  });

  it('LoRA at strength 1.0 (job field) and 0.6 (prompt tag) reproduce diffusers\' images', async () => {
    await expectFixturePng('sd15.pipeline.txt2img_lora_1.0', fixtureJob('sd15.pipeline.txt2img_lora_1.0', { loras: [{ name: 'tiny-lora', strength: 1 }] }));
    const c = family.case('sd15.pipeline.txt2img_lora_0.6');
    await expectFixturePng('sd15.pipeline.txt2img_lora_0.6', fixtureJob('sd15.pipeline.txt2img_lora_0.6', { prompt: `${c.prompt as string} <lora:peft/tiny-lora:0.6>` }));
  });

  it('a textual-inversion embedding and a VAE override reproduce diffusers\' images', async () => {
    await expectFixturePng('sd15.pipeline.txt2img_ti', fixtureJob('sd15.pipeline.txt2img_ti', { embeddings: [{ name: 'tiny-style-diffusers' }] }));
    await expectFixturePng('sd15.pipeline.txt2img_vae_override', fixtureJob('sd15.pipeline.txt2img_vae_override', { vae: 'tiny-vae-ft-mse' }));
  });

  it('the receipt records every add-on with its file hash and strength', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job({ prompt: 'a fox <lora:tiny-lora:0.5>', embeddings: [{ name: 'tiny-style-diffusers' }], vae: 'tiny-vae-ft-mse' }) });
    expect(res.statusCode, res.body).toBe(200);
    const params = res.json().params;
    expect(params.prompt).toBe('a fox');
    expect(params.loras).toEqual([{ name: 'tiny-lora', strength: 0.5, hash: expect.stringMatching(/^[0-9a-f]{64}$/) }]);
    expect(params.embeddings).toEqual([{ name: 'tiny-style-diffusers', hash: expect.stringMatching(/^[0-9a-f]{64}$/) }]);
    expect(params.vae).toEqual({ name: 'tiny-vae-ft-mse', hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
  });

  it('refuses unknown, unusable and non-fitting add-ons naming the field', async () => {
    const refused = async (over: Record<string, unknown>, status: number, param: string, message: RegExp) => {
      const res = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: job(over) });
      expect(res.statusCode, res.body).toBe(status);
      expect(res.json().error.param).toBe(param);
      expect(res.json().error.message).toMatch(message);
    };
    await refused({ loras: [{ name: 'tiny-lora' }, { name: 'nope' }] }, 404, 'loras[1].name', /No LoRA named "nope".*Available: .*tiny-lora/);
    await refused({ prompt: 'a fox <lora:missing>' }, 404, 'prompt', /No LoRA named "missing"/);
    await refused({ loras: [{ name: 'old' }] }, 400, 'loras[0].name', /pickle/);
    await refused({ loras: [{ name: 'elsewhere' }] }, 400, 'loras[0].name', /matches no layer of this model/);
    await refused({ embeddings: [{ name: 'gone' }] }, 404, 'embeddings[0].name', /No embedding named "gone"/);
    await refused({ vae: 'none' }, 404, 'vae', /No VAE named "none"/);
    await refused({ prompt: 'a fox <lora:tiny-lora:0.5:1>' }, 400, 'prompt', /separate text-encoder and UNet strengths are not supported/);
    await refused({ loras: Array.from({ length: 6 }, () => ({ name: 'tiny-lora' })) }, 400, 'loras', /<=5 items/);
    await refused({ loras: [{ name: 'tiny-lora' }], prompt: 'a <lora:tiny-lora> <lora:tiny-lora> <lora:tiny-lora> <lora:tiny-lora> <lora:tiny-lora>' }, 400, 'loras', /at most 5 LoRAs per job \(6 given, prompt tags included\)/);
  });
});
