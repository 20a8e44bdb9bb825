/**
 * SDXL base (and refiner) through the checkpoint engine, against diffusers' own runs in
 * ../shared/fixtures/checkpoints-xl: both layouts of the base (single file with a sidecar of the fixture's configs,
 * diffusers folder) → conversion cache → DiffusionModel; the prompt conditioning (two encoders, penultimate hidden
 * states concatenated, pooled text_embeds, zeros for an absent negative prompt), the UNet with time ids inside the
 * guided Euler loop (every step's latents), and the fp32 VAE decode of the final image, each within the case's atol.
 */
import { cp, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContentHashes } from '../../gpu-service/src/checkpoints/content-hash';
import { ConversionCache } from '../../gpu-service/src/checkpoints/conversion-cache';
import { loadCheckpointModel, type CheckpointEngineOptions, type CheckpointRef, type LoadedCheckpoint } from '../../gpu-service/src/checkpoints/checkpoint-engine';
import { createCfgDenoiser } from '../../gpu-service/src/diffusion/cfg-denoiser';
import { getSampler } from '../../gpu-service/src/diffusion/samplers';
import { addedConditioning } from '../../gpu-service/src/diffusion/sdxl/time-ids';
import { encodeSdxlPromptPair } from '../../gpu-service/src/diffusion/sdxl/sdxl-text-conditioning';
import { encodePromptPair } from '../../gpu-service/src/diffusion/text-conditioning';
import { decodeLatents } from '../../gpu-service/src/diffusion/vae';
import { baseStepsBeforeSwitch, generate, passSigmas } from '../../gpu-service/src/diffusion/pipelines/generate';
import { generateBatch } from '../../gpu-service/src/diffusion/pipelines/batch';
import sharp from 'sharp';
import { ModelVariants } from '../../gpu-service/src/addons/model-variants';
import { writeSafetensors } from '../../gpu-service/src/weights/safetensors-writer';
import { openSafetensors } from '../../gpu-service/src/weights/safetensors';
import { maskImage, splitImage } from '../helpers/rgb';
import { createNormalGenerator } from '../../gpu-service/src/diffusion/rng';
import { GenerationJobSchema } from '@image-api/shared/generation-job';
import { seedAt } from '@image-api/shared/seed';
import type { DiffusionModel } from '../../gpu-service/src/models/diffusion-model';
import type { ModelSpec } from '../../gpu-service/src/checkpoints/model-spec';

/** The UNet spec of a loaded checkpoint. @throws when the engine described a flow model instead. */
function unetSpec(loaded: LoadedCheckpoint): ModelSpec {
  if (!('unet' in loaded.spec)) throw new Error(`expected a UNet checkpoint, got ${loaded.spec.architecture}`);
  return loaded.spec;
}
import { expectWithinAtol, hasFixture, openFixtureFamily, type FixtureCase, type FixtureFamily } from '../helpers/checkpoint-fixtures';
import { addFixtureCheckpoint, addFixtureDiffusersFolder, addXlFixtureCheckpoint, makeModelsDir, TOKENIZER_SUBDIR } from '../helpers/checkpoint-models-dir';

const available = hasFixture('checkpoints-xl') && hasFixture('clip-tokenizer');

let modelsDir: string;
let engine: CheckpointEngineOptions;
let xl: FixtureFamily;

/** The single file under MODELS_DIR/checkpoints/<id> with a sidecar of the fixture's component configs. */
function addXlSingleFile(model: 'sdxl-base' | 'sdxl-refiner', id: string): Promise<string> {
  return addXlFixtureCheckpoint(modelsDir, model, id);
}

function atolOf(c: FixtureCase, output: string): number {
  return c.tolerance.per_output?.[output]?.atol ?? c.tolerance.atol!;
}

/** Row `i` of a reference tensor [N, ...]. */
async function row(name: string, i: number): Promise<Float32Array> {
  const t = await xl.tensor(name);
  const per = t.data.length / t.shape[0];
  return t.data.subarray(i * per, (i + 1) * per);
}

beforeAll(async () => {
  if (!available) return;
  modelsDir = await makeModelsDir('sdxl-engine-');
  const cache = new ConversionCache(path.join(modelsDir, '.cache'));
  engine = { cache, hashes: new ContentHashes(cache.root), tokenizerDir: path.join(modelsDir, TOKENIZER_SUBDIR), floatType: 'float32', attention: 'contrib' };
  xl = await openFixtureFamily('checkpoints-xl');
});
afterAll(async () => {
  await xl?.reference.close();
  if (modelsDir) await rm(modelsDir, { recursive: true, force: true });
});

/** The VAE decoder's float output of final latents (UNet space), as (x/2 + 0.5).clamp(0, 1) NCHW. */
async function decodeToUnitRange(model: DiffusionModel, latents: Float32Array, h: number, w: number): Promise<Float32Array> {
  const z = latents.map((v) => v / model.scalingFactor);
  const out = await model.vaeDecoder.run({ latent_sample: { data: z, dims: [1, model.latentChannels, h, w] } }, ['sample']);
  return out.sample.data.map((v) => Math.min(1, Math.max(0, v / 2 + 0.5)));
}

async function checkTxt2img(loaded: LoadedCheckpoint): Promise<void> {
  const model = loaded.model;
  const c = xl.case('sdxl.txt2img');
  const { cond, uncond } = await encodePromptPair(model, c.prompt as string, c.negative_prompt as string);
  const inter = c.intermediates as Record<string, string>;
  // The case's intermediates are the UNet batch [uncond, cond].
  const ehsAtol = atolOf(xl.case('sdxl.encode_prompt'), 'prompt_embeds');
  expectWithinAtol('txt2img encoder_hidden_states[uncond]', uncond.hidden, await row(inter.encoder_hidden_states, 0), ehsAtol);
  expectWithinAtol('txt2img encoder_hidden_states[cond]', cond.hidden, await row(inter.encoder_hidden_states, 1), ehsAtol);
  expectWithinAtol('txt2img text_embeds[uncond]', uncond.pooled!, await row(inter.text_embeds, 0), ehsAtol);
  expectWithinAtol('txt2img text_embeds[cond]', cond.pooled!, await row(inter.text_embeds, 1), ehsAtol);

  const [height, width] = [c.height as number, c.width as number];
  const mc = { originalSize: c.original_size as [number, number], cropTopLeft: c.crops_coords_top_left as [number, number], targetSize: c.target_size as [number, number] };
  const added = addedConditioning('base', [{ cond: cond.pooled!, uncond: uncond.pooled! }], height, width, mc);
  const ids = await xl.tensor(inter.time_ids);
  expect(Array.from(added.uncond.timeIds)).toEqual(Array.from(ids.data.subarray(0, 6)));
  expect(Array.from(added.cond.timeIds)).toEqual(Array.from(ids.data.subarray(6, 12)));

  const denoise = createCfgDenoiser({
    model,
    batch: 1,
    latentHeight: height / 8,
    latentWidth: width / 8,
    cond: cond.hidden,
    uncond: uncond.hidden,
    tokens: cond.tokens,
    cfgScales: [c.guidance_scale as number],
    added,
  });
  const xT = (await xl.tensor(c.inputs.x_T)).data;
  const steps: Float32Array[] = [];
  const out = await getSampler('euler').sample(denoise, Float32Array.from(xT), Float64Array.from(c.sigmas_used as number[]), () => {
    throw new Error('euler draws no noise');
  }, {
    onStep: (info) => {
      steps.push(Float32Array.from(info.x));
    },
  });
  for (let i = 0; i < steps.length; i++) {
    const name = `step${i}.latents_after`;
    expectWithinAtol(`txt2img ${name}`, steps[i], (await xl.tensor(inter[name])).data, atolOf(c, name));
  }
  const image = await decodeToUnitRange(model, Float32Array.from(out), height / 8, width / 8);
  const reference = (await xl.tensor(c.outputs.image)).data;
  expectWithinAtol('txt2img image', image, reference, atolOf(c, 'image'));
  // The pipeline's 8-bit decode of the same latents is the reference image rounded.
  const rgb = (await decodeLatents(model, out, 1, height / 8, width / 8)).rgb[0];
  const n = height * width;
  let worst = 0;
  for (let p = 0; p < n; p++) for (let ch = 0; ch < 3; ch++) worst = Math.max(worst, Math.abs(rgb[p * 3 + ch] - reference[ch * n + p] * 255));
  expect(worst).toBeLessThanOrEqual(0.51);
}

describe.skipIf(!available)('SDXL base through the checkpoint engine vs diffusers', () => {
  it('single file: detected as SDXL base (two encoders, 6 time ids, VAE 0.13025), encode_prompt matches, the 4-step Euler run and its image match', async () => {
    const file = await addXlSingleFile('sdxl-base', 'sdxl/sd_xl_base_tiny.safetensors');
    const loaded = await loadCheckpointModel({ id: 'sdxl/sd_xl_base_tiny.safetensors', path: file, format: 'safetensors' }, engine, { executionProviders: ['cpu'] });
    try {
      expect(loaded.spec.architecture).toBe('Stable Diffusion XL');
      expect(unetSpec(loaded).sdxl).toEqual({ kind: 'base', pooledDim: 20, timeIdCount: 6, forceZerosForEmptyPrompt: true });
      expect(loaded.spec.nativeSize).toEqual([128, 128]); // sample_size 16 × 8 from the sidecar's unet config
      expect(loaded.model.scalingFactor).toBe(0.13025);
      expect(loaded.model.hiddenSize).toBe(40);
      expect(loaded.model.sdxl?.encoderWidths).toEqual([16, 24]);
      // SDXL transformer depths per level, read from the tensors (diffusers transformer_layers_per_block [1, 2, 1]; level 0 has none).
      expect(unetSpec(loaded).unet.config.levels.map((l) => l.transformerDepth)).toEqual([[0, 0], [2, 2], [1, 1]]);

      const c = xl.case('sdxl.encode_prompt');
      const prompts = c.prompts as string[];
      const negatives = c.negative_prompts as string[];
      for (let i = 0; i < prompts.length; i++) {
        // A negative prompt that is given, even "", is encoded (diffusers zeroes only an absent one).
        const { cond, uncond } = await encodeSdxlPromptPair(loaded.model, prompts[i], negatives[i]);
        expectWithinAtol(`prompt_embeds[${i}]`, cond.hidden, await row(c.outputs.prompt_embeds, i), atolOf(c, 'prompt_embeds'));
        expectWithinAtol(`negative_prompt_embeds[${i}]`, uncond.hidden, await row(c.outputs.negative_prompt_embeds, i), atolOf(c, 'negative_prompt_embeds'));
        expectWithinAtol(`pooled_prompt_embeds[${i}]`, cond.pooled!, await row(c.outputs.pooled_prompt_embeds, i), atolOf(c, 'pooled_prompt_embeds'));
        expectWithinAtol(`negative_pooled_prompt_embeds[${i}]`, uncond.pooled!, await row(c.outputs.negative_pooled_prompt_embeds, i), atolOf(c, 'negative_pooled_prompt_embeds'));
      }
      // The jobs' empty negative prompt is "none given": zeros on the base.
      const none = await encodePromptPair(loaded.model, prompts[0], '');
      expect(none.uncond.hidden.every((v) => v === 0) && none.uncond.pooled!.every((v) => v === 0)).toBe(true);
      expect(none.cond.hidden.length).toBe(77 * 40);

      await checkTxt2img(loaded);
    } finally {
      await loaded.model.release();
    }
  });

  it('diffusers folder (text_encoder_2, model_index force_zeros_for_empty_prompt): the same run matches', async () => {
    const dir = await addFixtureDiffusersFolder(modelsDir, 'checkpoints-xl/sdxl-base', 'sdxl-base-diffusers');
    const loaded = await loadCheckpointModel({ id: 'sdxl-base-diffusers', path: dir, format: 'diffusers' }, engine, { executionProviders: ['cpu'] });
    try {
      expect(unetSpec(loaded).sdxl?.kind).toBe('base');
      await checkTxt2img(loaded);
    } finally {
      await loaded.model.release();
    }
  });
});

describe.skipIf(!available)('SDXL base → refiner handoff', () => {
  let base: LoadedCheckpoint;
  let refiner: LoadedCheckpoint;
  let refinerFolder: LoadedCheckpoint;
  let baseFile: string;
  let refinerFile: string;
  beforeAll(async () => {
    if (!available) return;
    baseFile = await addXlSingleFile('sdxl-base', 'sdxl/base-for-refiner.safetensors');
    refinerFile = await addXlSingleFile('sdxl-refiner', 'sdxl/sd_xl_refiner_tiny.safetensors');
    base = await loadCheckpointModel({ id: 'sdxl/base-for-refiner.safetensors', path: baseFile, format: 'safetensors' }, engine, { executionProviders: ['cpu'] });
    refiner = await loadCheckpointModel({ id: 'sdxl/sd_xl_refiner_tiny.safetensors', path: refinerFile, format: 'safetensors' }, engine, { executionProviders: ['cpu'] });
    // The refiner's diffusers folder as users have it: the fixture stores its vae / text_encoder_2 / tokenizer_2
    // once, in the base's folder (same weights; see its README), so they are copied in beside unet/ and scheduler/.
    const folder = path.join(modelsDir, 'checkpoints', 'sdxl-refiner-diffusers');
    await cp(path.join(xl.dir, 'sdxl-refiner', 'diffusers'), folder, { recursive: true });
    for (const c of ['vae', 'text_encoder_2', 'tokenizer_2']) await cp(path.join(xl.dir, 'sdxl-base', 'diffusers', c), path.join(folder, c), { recursive: true });
    refinerFolder = await loadCheckpointModel({ id: 'sdxl-refiner-diffusers', path: folder, format: 'diffusers' }, engine, { executionProviders: ['cpu'] });
  });
  afterAll(async () => {
    await base?.model.release();
    await refiner?.model.release();
    await refinerFolder?.model.release();
  });

  const euler = (denoise: Parameters<ReturnType<typeof getSampler>['sample']>[0], x: Float32Array, sigmas: number[]) =>
    getSampler('euler').sample(denoise, x, Float64Array.from(sigmas), () => {
      throw new Error('euler draws no noise');
    });

  it('the refiner single file and diffusers folder are detected (bigG only, 5 time ids, encodes ""), and the 2 + 2 step handoff at 0.5 matches diffusers with either', async () => {
    expect(refiner.spec.architecture).toBe('Stable Diffusion XL refiner');
    expect(unetSpec(refiner).sdxl).toEqual({ kind: 'refiner', pooledDim: 20, timeIdCount: 5, forceZerosForEmptyPrompt: false });
    expect(refiner.model.hiddenSize).toBe(24);
    const c = xl.case('sdxl.base_refiner');
    const inter = c.intermediates as Record<string, string>;
    const [height, width] = [c.height as number, c.width as number];
    const sigmas = c.sigmas_schedule as number[];
    // refiner_switch_at 0.5 of 4 steps: 2 on the base, as diffusers' denoising_end 0.5 cut the case.
    expect(baseStepsBeforeSwitch(sigmas.length - 1, 0.5)).toBe((c.base_steps as { count: number }).count);
    const k = baseStepsBeforeSwitch(sigmas.length - 1, 0.5);

    const prompt = c.prompt as string;
    const b = await encodePromptPair(base.model, prompt, '');
    const baseDenoise = createCfgDenoiser({
      model: base.model,
      batch: 1,
      latentHeight: height / 8,
      latentWidth: width / 8,
      cond: b.cond.hidden,
      uncond: b.uncond.hidden,
      tokens: b.cond.tokens,
      cfgScales: [c.guidance_scale as number],
      added: addedConditioning('base', [{ cond: b.cond.pooled!, uncond: b.uncond.pooled! }], height, width),
    });
    const noise = (await xl.tensor(c.inputs.initial_noise)).data;
    const initSigma = Math.fround(Math.sqrt(Math.fround(sigmas[0]) ** 2 + 1));
    const xT = noise.map((v) => Math.fround(v * initSigma));
    const handoff = Float32Array.from(await euler(baseDenoise, xT, sigmas.slice(0, k + 1)));
    expectWithinAtol('handoff_latents', handoff, (await xl.tensor(c.outputs.handoff_latents)).data, atolOf(c, 'handoff_latents'));

    // The refiner half, for the single file and the diffusers folder (same weights, same numbers).
    expect(refinerFolder.spec.architecture).toBe('Stable Diffusion XL refiner');
    for (const [layout, ref] of [['single file', refiner], ['diffusers folder', refinerFolder]] as const) {
      const r = await encodePromptPair(ref.model, prompt, '');
      const ehsAtol = atolOf(xl.case('sdxl.encode_prompt'), 'prompt_embeds');
      expectWithinAtol(`${layout}: refiner encoder_hidden_states[uncond] (encodes "")`, r.uncond.hidden, await row(inter.encoder_hidden_states, 0), ehsAtol);
      expectWithinAtol(`${layout}: refiner encoder_hidden_states[cond]`, r.cond.hidden, await row(inter.encoder_hidden_states, 1), ehsAtol);
      expectWithinAtol(`${layout}: refiner text_embeds[uncond]`, r.uncond.pooled!, await row(inter.text_embeds, 0), ehsAtol);
      const added = addedConditioning('refiner', [{ cond: r.cond.pooled!, uncond: r.uncond.pooled! }], height, width);
      const ids = await xl.tensor(inter.time_ids);
      expect([Array.from(added.uncond.timeIds), Array.from(added.cond.timeIds)]).toEqual(c.refiner_time_ids_uncond_cond);
      expect(Array.from(ids.data)).toEqual((c.refiner_time_ids_uncond_cond as number[][]).flat());
      const refinerDenoise = createCfgDenoiser({
        model: ref.model,
        batch: 1,
        latentHeight: height / 8,
        latentWidth: width / 8,
        cond: r.cond.hidden,
        uncond: r.uncond.hidden,
        tokens: r.cond.tokens,
        cfgScales: [c.guidance_scale as number],
        added,
      });
      const final = Float32Array.from(await euler(refinerDenoise, handoff, sigmas.slice(k)));
      const image = await decodeToUnitRange(ref.model, final, height / 8, width / 8);
      expectWithinAtol(`${layout}: base_refiner image`, image, (await xl.tensor(c.outputs.image)).data, atolOf(c, 'image'));
    }
  });

  it('generate() with refiner_switch_at runs the base then the refiner on one schedule; 0 is the base alone; a missing or non-SDXL refiner is a 400 on refiner_model', async () => {
    const job = GenerationJobSchema.parse({ id: 'r', model: 'sdxl/base-for-refiner.safetensors', prompt: 'a lighthouse', width: 64, height: 64, seed: 7, steps: 6, sampler: 'euler', scheduler: 'karras', cfg_scale: 5 });
    const withRefiner = { ...job, refiner_switch_at: 0.7, refiner_model: 'sdxl/sd_xl_refiner_tiny.safetensors' };
    const [refined] = await generate(base.model, withRefiner, {}, { refiner: refiner.model });
    const [alone] = await generate(base.model, job);

    // The same run put together by hand: the job's noise and sigmas, 5 steps on the base (i/6 < 0.7 for i ≤ 4), 1 on the refiner.
    const sigmas = Array.from(passSigmas(job, job.steps, 1, base.model));
    const k = baseStepsBeforeSwitch(6, 0.7);
    expect(k).toBe(5);
    const plane = 4 * 8 * 8;
    const n0 = createNormalGenerator(job.rng, seedAt(job.seed, 0)).randn(plane);
    const x = Float32Array.from(n0, (v) => 0 + v * sigmas[0]);
    const denoiser = async (m: DiffusionModel) => {
      const t = await encodePromptPair(m, job.prompt, job.negative_prompt);
      return createCfgDenoiser({
        model: m,
        batch: 1,
        latentHeight: 8,
        latentWidth: 8,
        cond: t.cond.hidden,
        uncond: t.uncond.hidden,
        tokens: t.cond.tokens,
        cfgScales: [5],
        added: addedConditioning(m.sdxl!.kind, [{ cond: t.cond.pooled!, uncond: t.uncond.pooled! }], 64, 64),
      });
    };
    const handoff = Float32Array.from(await euler(await denoiser(base.model), x, sigmas.slice(0, k + 1)));
    const final = await euler(await denoiser(refiner.model), handoff, sigmas.slice(k));
    const expected = (await decodeLatents(base.model, final, 1, 8, 8)).rgb[0];
    expect(Buffer.from(refined.rgb).equals(Buffer.from(expected))).toBe(true);
    expect(Buffer.from(refined.rgb).equals(Buffer.from(alone.rgb))).toBe(false);

    const [zero] = await generate(base.model, { ...withRefiner, refiner_switch_at: 0 }, {}, { refiner: refiner.model });
    expect(Buffer.from(zero.rgb).equals(Buffer.from(alone.rgb))).toBe(true);

    await expect(generate(base.model, withRefiner)).rejects.toMatchObject({ name: 'JobInputError', param: 'refiner_model' });
    const sd15File = await addFixtureCheckpoint(modelsDir, 'checkpoints/sd15-tiny', 'sd15-tiny.safetensors', 'sd1.5/sd15-tiny.safetensors');
    const sd15 = await loadCheckpointModel({ id: 'sd1.5/sd15-tiny.safetensors', path: sd15File, format: 'safetensors' }, engine, { executionProviders: ['cpu'] });
    try {
      await expect(generate(base.model, withRefiner, {}, { refiner: sd15.model })).rejects.toMatchObject({ param: 'refiner_model', message: expect.stringContaining('is not an SDXL refiner') });
      await expect(generate(sd15.model, { ...withRefiner, model: 'sd1.5/sd15-tiny.safetensors' }, {}, { refiner: refiner.model })).rejects.toMatchObject({
        param: 'refiner_model',
        message: expect.stringContaining('is not an SDXL model'),
      });
    } finally {
      await sd15.model.release();
    }
  });

  it('SD 1.x features on SDXL: img2img, inpainting keeps every pixel outside the mask, hires fix, batching per seed, clip_skip, ays → ays_sdxl', async () => {
    const job = GenerationJobSchema.parse({ id: 'f', model: 'sdxl/base-for-refiner.safetensors', prompt: 'a red door', width: 64, height: 64, seed: 11, steps: 3, sampler: 'euler', scheduler: 'karras', cfg_scale: 4 });
    const src = await splitImage(64, 64, [200, 40, 40], [40, 40, 200]);
    const [i2i] = await generate(base.model, { ...job, mode: 'img2img', init_image: src.b64, strength: 0.5 });
    expect([i2i.width, i2i.height]).toEqual([64, 64]);
    const inCentre = (x: number, y: number) => x >= 16 && x < 48 && y >= 16 && y < 48;
    const mask = await maskImage(64, 64, inCentre, 'white');
    const [inpainted] = await generate(base.model, { ...job, mode: 'inpaint', init_image: src.b64, mask, mask_mode: 'white', strength: 1 });
    const source = await sharp(Buffer.from(src.b64, 'base64')).removeAlpha().raw().toBuffer();
    let kept = 0;
    let changed = 0;
    for (let y = 0; y < 64; y++) {
      for (let x = 0; x < 64; x++) {
        const o = (y * 64 + x) * 3;
        const same = inpainted.rgb[o] === source[o] && inpainted.rgb[o + 1] === source[o + 1] && inpainted.rgb[o + 2] === source[o + 2];
        if (!inCentre(x, y)) kept += same ? 1 : 0;
        else changed += same ? 0 : 1;
      }
    }
    expect(kept).toBe(64 * 64 - 32 * 32);
    expect(changed).toBeGreaterThan(0);
    const [hires] = await generate(base.model, { ...job, hires_fix: { target_width: 128, target_height: 96, strength: 0.5, upscaler: 'latent' } });
    expect([hires.width, hires.height]).toEqual([128, 96]);

    // Image i of a job is seed + i whether it ran in a batch or alone, also through generateBatch.
    const [alone] = await generate(base.model, job);
    const pair = await generate(base.model, { ...job, seed: 10, batch_size: 2 });
    expect(Buffer.from(pair[1].rgb).equals(Buffer.from(alone.rgb))).toBe(true);
    const [batched] = (await generateBatch(base.model, [{ job, isActive: () => true }, { job: { ...job, id: 'g', prompt: 'a blue door' }, isActive: () => true }]))[0]!;
    expect(Buffer.from(batched.rgb).equals(Buffer.from(alone.rgb))).toBe(true);

    // clip_skip: 2 is SDXL's default (penultimate); 1 the last layer; beyond the 3-layer encoders a 400.
    const text = (clipSkip?: number) => encodePromptPair(base.model, job.prompt, '', clipSkip);
    expect((await text(2)).cond.hidden).toEqual((await text()).cond.hidden);
    expect((await text(1)).cond.hidden).not.toEqual((await text()).cond.hidden);
    await expect(text(4)).rejects.toMatchObject({ param: 'clip_skip' });
    expect(Array.from(passSigmas({ ...job, scheduler: 'ays' }, 10, 1, base.model))).toEqual(Array.from(passSigmas({ ...job, scheduler: 'ays_sdxl' }, 10, 1, base.model)));
  });

  it('LoRA: kohya lora_te1_ patches CLIP-L, lora_te2_ the bigG encoder (its fused q/k/v rows), each only its half of the conditioning; an SD 1.x embedding is a 400', async () => {
    const variants = new ModelVariants({ engine, sessionOptions: { executionProviders: ['cpu'] } });
    const rand = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 1000 + i * 12.9898) * 0.5);
    const write = async (name: string, module: string, out: number, inF: number) => {
      const file = path.join(modelsDir, 'loras', `${name}.safetensors`);
      await mkdir(path.dirname(file), { recursive: true });
      await writeSafetensors(file, [
        { key: `${module}.lora_down.weight`, dtype: 'F32', shape: [2, inF], values: () => rand(2 * inF, 1) },
        { key: `${module}.lora_up.weight`, dtype: 'F32', shape: [out, 2], values: () => rand(out * 2, 2) },
      ]);
      return { loras: [{ id: name, path: file, param: 'loras[0].name', strength: 1 }], embeddings: [] };
    };
    const te1 = await write('te1', 'lora_te1_text_model_encoder_layers_0_mlp_fc1', 64, 16);
    const te2 = await write('te2', 'lora_te2_text_model_encoder_layers_0_self_attn_q_proj', 24, 24);
    const plain = await encodePromptPair(base.model, 'a red door', 'blurry');
    /** Max |Δ| over the CLIP-L features (0..15) and the bigG ones (16..39) of every token, and of the pooled vector. */
    const deltas = async (addons: Parameters<ModelVariants['acquire']>[1]) => {
      const lease = await variants.acquire(base.model, addons);
      try {
        const t = await encodePromptPair(lease.model, 'a red door', 'blurry');
        let clipL = 0;
        let bigG = 0;
        for (let k = 0; k < t.cond.hidden.length; k++) {
          const d = Math.abs(t.cond.hidden[k] - plain.cond.hidden[k]);
          if (k % 40 < 16) clipL = Math.max(clipL, d);
          else bigG = Math.max(bigG, d);
        }
        const pooled = Math.max(...t.cond.pooled!.map((v, i) => Math.abs(v - plain.cond.pooled![i])));
        return { clipL, bigG, pooled };
      } finally {
        lease.release();
      }
    };
    const a = await deltas(te1);
    expect(a.clipL).toBeGreaterThan(1e-3);
    expect([a.bigG, a.pooled]).toEqual([0, 0]);
    const b = await deltas(te2);
    expect(b.clipL).toBe(0);
    expect(b.bigG).toBeGreaterThan(1e-3);
    expect(b.pooled).toBeGreaterThan(1e-4);
    // An SD 1.x embedding (one 16-wide tensor) has no vectors for the bigG encoder.
    const sd1 = path.join(modelsDir, 'embeddings', 'sd1-style.safetensors');
    await mkdir(path.dirname(sd1), { recursive: true });
    await writeSafetensors(sd1, [{ key: 'emb_params', dtype: 'F32', shape: [1, 16], values: () => rand(16, 3) }]);
    await expect(variants.acquire(base.model, { loras: [], embeddings: [{ id: 'sd1-style', path: sd1, param: 'embeddings[0].name' }] })).rejects.toMatchObject({
      status: 400,
      param: 'embeddings[0].name',
    });
  });

  /**
   * An SDXL embedding (`clip_l` [n, 768-wide], `clip_g` [n, bigG-wide]) whose vectors are each encoder's own token
   * embeddings of the words "red door" must condition exactly as those words do: each encoder reads its own
   * vectors in place of the name's tokens (A1111's EmbeddingsWithFixes per SDXL embedder), weights included.
   */
  it('textual inversion: an SDXL clip_l/clip_g embedding conditions both encoders (base) and bigG (refiner) exactly as the words its vectors are', async () => {
    const variants = new ModelVariants({ engine, sessionOptions: { executionProviders: ['cpu'] } });
    const words = base.model.tokenizer.encode('red door');
    const rows = async (file: string, key: string) => {
      const f = await openSafetensors(file);
      try {
        const { shape } = f.entries.get(key)!;
        const table = await f.readFloat32(key);
        const out = new Float32Array(words.length * shape[1]);
        words.forEach((id, i) => out.set(table.subarray(id * shape[1], (id + 1) * shape[1]), i * shape[1]));
        return { shape: [words.length, shape[1]], out };
      } finally {
        await f.close();
      }
    };
    const keyOf = async (file: string, pattern: RegExp) => {
      const f = await openSafetensors(file);
      try {
        return [...f.entries.keys()].find((k) => pattern.test(k))!;
      } finally {
        await f.close();
      }
    };
    const clipL = await rows(baseFile, await keyOf(baseFile, /^conditioner\.embedders\.0\..*token_embedding\.weight$/));
    const clipG = await rows(baseFile, await keyOf(baseFile, /^conditioner\.embedders\.1\..*token_embedding\.weight$/));
    const file = path.join(modelsDir, 'embeddings', 'xl-door.safetensors');
    await mkdir(path.dirname(file), { recursive: true });
    await writeSafetensors(file, [
      { key: 'clip_g', dtype: 'F32', shape: clipG.shape, values: () => clipG.out },
      { key: 'clip_l', dtype: 'F32', shape: clipL.shape, values: () => clipL.out },
    ]);
    const addons = { loras: [], embeddings: [{ id: 'xl-door', path: file, param: 'embeddings[0].name' }] };
    for (const [name, model] of [['base', base.model], ['refiner', refiner.model]] as const) {
      const lease = await variants.acquire(model, addons);
      try {
        const withEmbedding = await encodePromptPair(lease.model, 'a (xl-door:1.2), at night', 'blurry xl-door');
        const withWords = await encodePromptPair(model, 'a (red door:1.2), at night', 'blurry red door');
        expect(withEmbedding.cond.hidden, `${name} cond`).toEqual(withWords.cond.hidden);
        expect(withEmbedding.uncond.hidden, `${name} uncond`).toEqual(withWords.uncond.hidden);
        expect(withEmbedding.cond.pooled, `${name} pooled`).toEqual(withWords.cond.pooled);
        // Without its name in the prompt the variant conditions as the plain model.
        expect((await encodePromptPair(lease.model, 'a cat', '')).cond.hidden).toEqual((await encodePromptPair(model, 'a cat', '')).cond.hidden);
      } finally {
        lease.release();
      }
    }
  });
});
