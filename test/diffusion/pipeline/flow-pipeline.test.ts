/**
 * The flow-matching pipeline against diffusers: the fixtures' tiny FLUX.1-schnell and SD 3.5 diffusers folders,
 * dropped into MODELS_DIR/checkpoints, converted and loaded by the checkpoint engine (the registry's path), then
 * the 4-step `flux.txt2img` / `sd35.txt2img` cases replayed with the cases' own initial latents: prompt
 * conditioning, the sigmas `simple` builds from the model's flow table (shift 1 / shift 3), every Euler step's
 * latents and the decoded image within the cases' per-output atol. The fixture pipelines ran with
 * max_sequence_length 32 / 24 (the real pipelines' 256), so the loaded model's T5 length is set to the case's.
 * Also the job-level pipeline: seeded txt2img is deterministic, img2img and inpainting keep what they must, and
 * the samplers / fields that do not apply to flow models are refused naming the field.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GenerationJobSchema, type GenerationJob } from '../../../shared/src/generation-job';
import { checkpointEngineFor, loadCheckpointModel } from '../../../gpu-service/src/checkpoints/checkpoint-engine';
import { encodeFlowPrompt } from '../../../gpu-service/src/diffusion/flow-conditioning';
import { createFlowDenoiser, packLatents, unpackLatents } from '../../../gpu-service/src/diffusion/pipelines/flow-generate';
import { generate, JobInputError } from '../../../gpu-service/src/diffusion/pipelines/generate';
import { getSampler } from '../../../gpu-service/src/diffusion/samplers';
import { buildSigmas } from '../../../gpu-service/src/diffusion/schedules';
import { flowModelSchedule } from '../../../gpu-service/src/diffusion/schedules/flow-schedule';
import { decodeLatents, encodeImages } from '../../../gpu-service/src/diffusion/vae';
import { latentRgbProjection, renderPreview } from '../../../gpu-service/src/diffusion/previews';
import sharp from 'sharp';
import type { DiffusionModel } from '../../../gpu-service/src/models/diffusion-model';
import { expectWithinAtol, hasFixture, openFixtureFamily, type FixtureFamily } from '../../helpers/checkpoint-fixtures';
import { addFixtureDiffusersFolder, makeModelsDir, TOKENIZER_SUBDIR } from '../../helpers/checkpoint-models-dir';

const available = hasFixture('checkpoints-dit') && hasFixture('clip-tokenizer');
let modelsDir: string;
const models: Record<string, DiffusionModel> = {};
const families: Record<string, FixtureFamily> = {};
const worst: Record<string, number> = {};

beforeAll(async () => {
  if (!available) return;
  modelsDir = await makeModelsDir('flow-pipeline-');
  const engine = checkpointEngineFor(modelsDir, { floatType: 'float32', attention: 'contrib', tokenizerDir: path.join(modelsDir, TOKENIZER_SUBDIR) });
  for (const [name, dir] of [
    ['flux', 'flux-schnell'],
    ['sd35', 'sd3.5'],
  ] as const) {
    const folder = await addFixtureDiffusersFolder(modelsDir, `checkpoints-dit/${dir}`, `${dir}-tiny`);
    const loaded = await loadCheckpointModel({ id: `${dir}-tiny`, path: folder, format: 'diffusers' }, engine, {});
    models[name] = loaded.model;
    families[name] = await openFixtureFamily(`checkpoints-dit/${dir}`);
  }
}, 240_000);
afterAll(async () => {
  await Promise.all(Object.values(models).map((m) => m.release()));
  await Promise.all(Object.values(families).map((f) => f.reference.close()));
  if (modelsDir) await rm(modelsDir, { recursive: true, force: true });
  if (Object.keys(worst).length) console.log('flow pipeline errors (max abs):', worst);
});

function atolOf(c: { tolerance: { atol?: number; per_output?: Record<string, { atol?: number }> } }, name: string): number {
  return c.tolerance.per_output?.[name]?.atol ?? c.tolerance.atol!;
}

describe.skipIf(!available)('flow pipeline vs diffusers (4-step reference cases)', () => {
  for (const [name, caseId] of [
    ['flux', 'flux.txt2img'],
    ['sd35', 'sd35.txt2img'],
  ] as const) {
    it(`${caseId}: conditioning, sigmas, every Euler step and the image`, async () => {
      const fam = families[name];
      const model = models[name];
      const c = fam.case(caseId);
      model.flow!.t5.maxSequenceLength = c.max_sequence_length as number;
      const width = c.width as number;
      const height = c.height as number;
      const h = height / 8;
      const w = width / 8;
      const C = model.latentChannels;

      const cond = await encodeFlowPrompt(model, c.prompt as string);
      const ehs = await fam.tensor(c.intermediates!['encoder_hidden_states' as never] as unknown as string);
      const pooled = await fam.tensor((c.intermediates as Record<string, string>).pooled_projections);
      const cfg = name === 'sd35' ? (c.guidance_scale as number) : 1;
      // SD 3.5's reference states are the CFG batch [uncond; cond]; FLUX's the single prompt.
      const rows = ehs.shape[0];
      const per = ehs.data.length / rows;
      worst[`${caseId} prompt`] = expectWithinAtol(`${caseId} encoder_hidden_states`, cond.hidden, ehs.data.subarray((rows - 1) * per), c.tolerance.atol!);
      expectWithinAtol(`${caseId} pooled`, cond.pooled, pooled.data.subarray((rows - 1) * (pooled.data.length / rows)), c.tolerance.atol!);
      const uncond = cfg > 1 ? await encodeFlowPrompt(model, c.negative_prompt as string) : undefined;
      if (uncond) expectWithinAtol(`${caseId} negative encoder_hidden_states`, uncond.hidden, ehs.data.subarray(0, per), c.tolerance.atol!);

      const sigmas = buildSigmas(flowModelSchedule(model.flow!.scheduler, width, height), 'simple', 4);
      const used = c.sigmas_used as number[];
      for (let i = 0; i < used.length; i++) expect(Math.abs(sigmas[i] - used[i])).toBeLessThanOrEqual(1e-7);

      const inputName = Object.values(c.inputs)[0];
      const init = await fam.tensor(inputName);
      const x0 = name === 'flux' ? unpackLatents(init.data, 1, C, h, w) : init.data;
      const denoise = createFlowDenoiser({ model, batch: 1, latentHeight: h, latentWidth: w, cond, uncond, cfgScale: cfg });
      const steps: Float32Array[] = [];
      const out = await getSampler('euler').sample(denoise, Float32Array.from(x0), sigmas, () => new Float32Array(x0.length), {
        onStep: (info) => {
          steps.push(Float32Array.from(info.x));
        },
      });
      expect(steps).toHaveLength(4);
      const inter = c.intermediates as Record<string, string>;
      for (let i = 0; i < 4; i++) {
        const ref = await fam.tensor(inter[`step${i}.latents_after`]);
        const mine = ref.data.length === steps[i].length && name === 'flux' && ref.shape.length === 3 ? packLatents(steps[i], 1, C, h, w) : steps[i];
        worst[`${caseId} step${i}`] = expectWithinAtol(`${caseId} step ${i} latents`, mine, ref.data, atolOf(c, `step${i}.latents_after`));
      }
      const image = await fam.tensor(c.outputs.image);
      const decoded = await decodeLatents(model, out, 1, h, w);
      // The reference image is float in [0, 1] (B, 3, H, W); ours is 8-bit RGB of the same pixels.
      const n = width * height;
      let maxDiff = 0;
      for (let p = 0; p < n; p++) for (let ch = 0; ch < 3; ch++) maxDiff = Math.max(maxDiff, Math.abs(decoded.rgb[0][p * 3 + ch] - image.data[ch * n + p] * 255));
      // Rounding to 8 bits: within half a level plus the case's atol (9e-6 ≈ 0.002 levels).
      expect(maxDiff).toBeLessThanOrEqual(0.5 + atolOf(c, 'image') * 255);
      worst[`${caseId} image (levels)`] = maxDiff;
    });
  }
});

function job(overrides: Partial<GenerationJob> & Record<string, unknown>): GenerationJob {
  return GenerationJobSchema.parse({ id: 'job-1', model: 'x', prompt: 'a red fox', width: 64, height: 64, steps: 2, seed: 7, cfg_scale: 1, sampler: 'euler', scheduler: 'simple', ...overrides });
}

describe.skipIf(!available)('flow pipeline jobs', () => {
  it('txt2img is the same for the same seed and differs for another; batch image i equals seed + i alone', async () => {
    const model = models.flux;
    const a = await generate(model, job({}));
    const b = await generate(model, job({}));
    const other = await generate(model, job({ seed: 8 }));
    expect(Buffer.from(a[0].rgb).equals(Buffer.from(b[0].rgb))).toBe(true);
    expect(Buffer.from(a[0].rgb).equals(Buffer.from(other[0].rgb))).toBe(false);
    const batch = await generate(model, job({ batch_size: 2 }));
    expect(Buffer.from(batch[1].rgb).equals(Buffer.from(other[0].rgb))).toBe(true);
    expect(a[0]).toMatchObject({ width: 64, height: 64 });
  });

  it('previews: every step reports the 16-channel x0 estimate; the fast projection and the full decode are images of the job size', async () => {
    const model = models.flux;
    const previews: Buffer[] = [];
    const steps: number[] = [];
    await generate(model, job({ steps: 3 }), {
      onStep: async (p) => {
        steps.push(p.step);
        expect(p.denoised.length).toBe(16 * p.latentHeight * p.latentWidth);
        previews.push(await renderPreview(model, p.step === 3 ? 'full' : 'fast', p.denoised, p.latentHeight, p.latentWidth, { width: 64, height: 64 }));
      },
    });
    expect(steps).toEqual([1, 2, 3]);
    for (const jpeg of previews) expect(await sharp(jpeg).metadata()).toMatchObject({ format: 'jpeg', width: 64, height: 64 });
    // One latent→RGB factor per latent channel, measured from the model's own VAE.
    const proj = await latentRgbProjection(model);
    expect(proj.factors).toHaveLength(16);
  });

  it('SD 3.5 with CFG and a negative prompt; the negative prompt changes the image', async () => {
    const model = models.sd35;
    const plain = await generate(model, job({ cfg_scale: 4.5, width: 64, height: 64 }));
    const negative = await generate(model, job({ cfg_scale: 4.5, width: 64, height: 64, negative_prompt: 'blurry' }));
    expect(Buffer.from(plain[0].rgb).equals(Buffer.from(negative[0].rgb))).toBe(false);
  });

  it('img2img at strength 0 returns the decoded source; inpainting keeps every pixel outside the mask', async () => {
    const model = models.flux;
    const src = Buffer.alloc(64 * 64 * 3);
    for (let p = 0; p < 64 * 64; p++) src.set([p % 64 * 4, (p >> 6) * 4, 128], p * 3);
    const png = await sharp(src, { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer();
    const init_image = png.toString('base64');
    const zero = await generate(model, job({ mode: 'img2img', init_image, strength: 0 }));
    const half = await generate(model, job({ mode: 'img2img', init_image, strength: 0.5 }));
    const roundTrip = await decodeLatents(model, await encodeImages(model, [new Uint8Array(src)], 64, 64), 1, 8, 8);
    expect(Buffer.from(zero[0].rgb).equals(Buffer.from(roundTrip.rgb[0]))).toBe(true);
    expect(Buffer.from(half[0].rgb).equals(Buffer.from(roundTrip.rgb[0]))).toBe(false);
    const maskRgb = Buffer.alloc(64 * 64 * 3);
    for (let y = 0; y < 64; y++) for (let x = 32; x < 64; x++) maskRgb.fill(255, (y * 64 + x) * 3, (y * 64 + x) * 3 + 3);
    const maskPng = await sharp(maskRgb, { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer();
    const inpainted = await generate(model, job({ mode: 'inpaint', init_image, mask: maskPng.toString('base64'), strength: 1 }));
    for (let y = 0; y < 64; y++) for (let x = 0; x < 32; x++) for (let c = 0; c < 3; c++) expect(inpainted[0].rgb[(y * 64 + x) * 3 + c]).toBe(src[(y * 64 + x) * 3 + c]);
  });

  it('refuses what does not apply to flow models, naming the field', async () => {
    const model = models.flux;
    const refused = async (o: Record<string, unknown>) => {
      const err = await generate(model, job(o)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(JobInputError);
      return err as JobInputError;
    };
    expect((await refused({ sampler: 'euler_ancestral' })).param).toBe('sampler');
    expect((await refused({ sampler: 'dpmpp_2m' })).message).toMatch(/does not apply to FLUX\.1 \(flow matching\); use one of euler, heun/);
    expect((await refused({ scheduler: 'ays' })).param).toBe('scheduler');
    expect((await refused({ guidance: 3.5 })).param).toBe('guidance');
    expect((await refused({ clip_skip: 2 })).param).toBe('clip_skip');
    expect((await refused({ width: 88 })).param).toBe('size');
    expect((await refused({ hires_fix: { target_width: 128, target_height: 128 } })).param).toBe('hires_fix');
    // Without CFG (cfg_scale ≤ 1) a negative prompt is not used: the same image as without one.
    const plain = await generate(model, job({}));
    const withNegative = await generate(model, job({ negative_prompt: 'blurry' }));
    expect(Buffer.from(withNegative[0].rgb).equals(Buffer.from(plain[0].rgb))).toBe(true);
    // Samplers that do apply run.
    for (const sampler of ['heun', 'lms', 'dpm_2']) expect((await generate(model, job({ sampler, steps: 2 })))[0].rgb.length).toBe(64 * 64 * 3);
  });
});
