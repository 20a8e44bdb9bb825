/**
 * SDXL base (and refiner) through the checkpoint engine, against diffusers' own runs in
 * ../shared/fixtures/checkpoints-xl: both layouts of the base (single file with a sidecar of the fixture's configs,
 * diffusers folder) → conversion cache → DiffusionModel; the prompt conditioning (two encoders, penultimate hidden
 * states concatenated, pooled text_embeds, zeros for an absent negative prompt), the UNet with time ids inside the
 * guided Euler loop (every step's latents), and the fp32 VAE decode of the final image, each within the case's atol.
 */
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
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
import type { DiffusionModel } from '../../gpu-service/src/models/diffusion-model';
import { expectWithinAtol, fixtureDir, hasFixture, openFixtureFamily, type FixtureCase, type FixtureFamily } from '../helpers/checkpoint-fixtures';
import { addFixtureDiffusersFolder, makeModelsDir, TOKENIZER_SUBDIR } from '../helpers/checkpoint-models-dir';

const available = hasFixture('checkpoints-xl') && hasFixture('clip-tokenizer');

let modelsDir: string;
let engine: CheckpointEngineOptions;
let xl: FixtureFamily;

/** The single file under MODELS_DIR/checkpoints/<id> with a sidecar of the fixture's component configs. */
async function addXlSingleFile(model: 'sdxl-base' | 'sdxl-refiner', id: string): Promise<string> {
  const models = xl.json.models as Record<string, Record<string, unknown> & { files: { single_file: { path: string } } }>;
  const m = models[model];
  const target = path.join(modelsDir, 'checkpoints', id);
  await mkdir(path.dirname(target), { recursive: true });
  await copyFile(path.join(fixtureDir('checkpoints-xl'), m.files.single_file.path), target);
  const { unet, vae, text_encoder, text_encoder_2, scheduler } = m;
  await writeFile(target.replace(/\.safetensors$/, '.json'), JSON.stringify({ unet, vae, text_encoder, text_encoder_2, scheduler }));
  return target;
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
      expect(loaded.spec.sdxl).toEqual({ kind: 'base', pooledDim: 20, timeIdCount: 6, forceZerosForEmptyPrompt: true });
      expect(loaded.spec.nativeSize).toEqual([128, 128]); // sample_size 16 × 8 from the sidecar's unet config
      expect(loaded.model.scalingFactor).toBe(0.13025);
      expect(loaded.model.hiddenSize).toBe(40);
      expect(loaded.model.sdxl?.encoderWidths).toEqual([16, 24]);
      // SDXL transformer depths per level, read from the tensors (diffusers transformer_layers_per_block [1, 2, 1]; level 0 has none).
      expect(loaded.spec.unet.config.levels.map((l) => l.transformerDepth)).toEqual([[0, 0], [2, 2], [1, 1]]);

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
      expect(loaded.spec.sdxl?.kind).toBe('base');
      await checkTxt2img(loaded);
    } finally {
      await loaded.model.release();
    }
  });
});
