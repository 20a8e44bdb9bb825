/**
 * The checkpoint engine end to end on the fixtures' tiny SD 1.x / 2.x models: a single file (with its sidecar)
 * or a diffusers folder → conversion cache → DiffusionModel → the ordinary pipeline, checked against diffusers'
 * own StableDiffusionPipeline runs (prompt embeddings within the case tolerance, the PNG within 1 per channel).
 */
import { readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GenerationJobSchema, type GenerationJob } from '@image-api/shared/generation-job';
import { ContentHashes } from '../../gpu-service/src/checkpoints/content-hash';
import { ConversionCache } from '../../gpu-service/src/checkpoints/conversion-cache';
import { loadCheckpointModel, type CheckpointEngineOptions, type CheckpointRef } from '../../gpu-service/src/checkpoints/checkpoint-engine';
import { generate } from '../../gpu-service/src/diffusion/pipelines/generate';
import { encodePromptPair } from '../../gpu-service/src/diffusion/text-conditioning';
import { expectWithinTolerance, hasFixture, openFixtureFamily, type FixtureFamily } from '../helpers/checkpoint-fixtures';
import { addFixtureCheckpoint, addFixtureDiffusersFolder, makeModelsDir, TOKENIZER_SUBDIR } from '../helpers/checkpoint-models-dir';

const available = hasFixture('checkpoints') && hasFixture('clip-tokenizer');

let modelsDir: string;
let engine: CheckpointEngineOptions;
let sd15: FixtureFamily;
let sd2: FixtureFamily;

beforeAll(async () => {
  if (!available) return;
  modelsDir = await makeModelsDir('engine-');
  const cache = new ConversionCache(path.join(modelsDir, '.cache'));
  engine = { cache, hashes: new ContentHashes(cache.root), tokenizerDir: path.join(modelsDir, TOKENIZER_SUBDIR), floatType: 'float32', attention: 'contrib' };
  sd15 = await openFixtureFamily('checkpoints/sd15-tiny');
  sd2 = await openFixtureFamily('checkpoints/sd2-tiny');
});
afterAll(async () => {
  await sd15?.reference.close();
  await sd2?.reference.close();
  if (modelsDir) await rm(modelsDir, { recursive: true, force: true });
});

/** A job for a fixture pipeline case: Euler over the case's sigmas (ComfyUI `simple` / `karras` give them). */
function jobFor(c: Record<string, unknown>, scheduler: string, model: string): GenerationJob {
  const base = GenerationJobSchema.parse({
    id: 'fixture',
    model,
    prompt: c.prompt,
    negative_prompt: c.negative_prompt,
    width: 64,
    height: 64,
    seed: c.noise_seed,
    steps: c.steps,
    sampler: 'euler',
    scheduler,
    cfg_scale: c.guidance_scale,
  });
  // The fixtures use sizes below the public API's 64-pixel minimum; the engine itself takes any multiple of 8.
  return { ...base, width: c.width as number, height: c.height as number };
}

/** Every channel of our image within 1 of upstream's PNG (the fixtures' image rule). */
async function expectImageMatches(rgb: Uint8Array, width: number, height: number, pngPath: string): Promise<void> {
  const { data, info } = await sharp(await readFile(pngPath)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  expect([info.width, info.height]).toEqual([width, height]);
  let worst = 0;
  for (let i = 0; i < data.length; i++) worst = Math.max(worst, Math.abs(data[i] - rgb[i]));
  expect(worst, `largest channel difference from ${path.basename(pngPath)}`).toBeLessThanOrEqual(1);
}

async function runPipelineCase(family: FixtureFamily, caseId: string, ref: CheckpointRef, scheduler: string) {
  const c = family.case(caseId);
  const loaded = await loadCheckpointModel(ref, engine, { executionProviders: ['cpu'] });
  try {
    const { cond, uncond } = await encodePromptPair(loaded.model, c.prompt as string, c.negative_prompt as string);
    const rel = c.tolerance.rel;
    expectWithinTolerance(`${caseId} prompt_embeds`, cond.hidden, (await family.tensor(c.outputs.prompt_embeds)).data, rel);
    expectWithinTolerance(`${caseId} negative_prompt_embeds`, uncond.hidden, (await family.tensor(c.outputs.negative_prompt_embeds)).data, rel);
    const [image] = await generate(loaded.model, jobFor(c, scheduler, ref.id));
    await expectImageMatches(image.rgb, image.width, image.height, path.join(family.dir, c.png as string));
    return loaded;
  } finally {
    await loaded.model.release();
  }
}

describe.skipIf(!available)('checkpoint engine: fixture pipelines through conversion, cache and the pipeline', () => {
  it('SD 1.x single file with its sidecar: Euler txt2img matches diffusers, and the second load reuses the cache', async () => {
    const file = await addFixtureCheckpoint(modelsDir, 'checkpoints/sd15-tiny', 'sd15-tiny.safetensors', 'sd1.5/sd15-tiny.safetensors');
    const ref: CheckpointRef = { id: 'sd1.5/sd15-tiny.safetensors', path: file, format: 'safetensors' };
    const first = await runPipelineCase(sd15, 'sd15.pipeline.txt2img', ref, 'simple');
    expect(first.converted).toBe(true);
    expect(first.spec.architecture).toBe('Stable Diffusion 1.x');
    expect(first.model.contentHash).toMatch(/^[0-9a-f]{64}$/);
    // Karras sigmas have fractional timesteps: the float timestep input must carry them.
    const second = await runPipelineCase(sd15, 'sd15.pipeline.txt2img_karras', ref, 'karras');
    expect(second.converted).toBe(false);
    expect(second.cacheDir).toBe(first.cacheDir);
    const entries = (await readdir(path.join(modelsDir, '.cache'))).filter((n) => !n.endsWith('.json'));
    expect(entries).toEqual([path.basename(first.cacheDir)]);
  });

  it('SD 1.x diffusers folder gives the same image (same weights in the other layout)', async () => {
    const dir = await addFixtureDiffusersFolder(modelsDir, 'checkpoints/sd15-tiny', 'sd15-tiny-diffusers');
    // The folder carries the real tokenizer files in tokenizer/.
    await runPipelineCase(sd15, 'sd15.pipeline.txt2img', { id: 'sd15-tiny-diffusers', path: dir, format: 'diffusers' }, 'simple');
  });

  it('SD 2.x single file: OpenCLIP penultimate layer, pad id 0, v-prediction from the sidecar', async () => {
    const file = await addFixtureCheckpoint(modelsDir, 'checkpoints/sd2-tiny', 'sd2-tiny.safetensors', 'sd2/sd2-tiny.safetensors');
    const loaded = await runPipelineCase(sd2, 'sd2.pipeline.txt2img_v', { id: 'sd2/sd2-tiny.safetensors', path: file, format: 'safetensors' }, 'simple');
    expect(loaded.spec.predictionType).toBe('v_prediction');
    expect(loaded.model.schedule.predictionType).toBe('v_prediction');
  });

  it('a changed sidecar is a new cache entry; the old file content is never reused for it', async () => {
    const file = await addFixtureCheckpoint(modelsDir, 'checkpoints/sd15-tiny', 'sd15-tiny.safetensors', 'other/copy.safetensors');
    const ref: CheckpointRef = { id: 'other/copy.safetensors', path: file, format: 'safetensors' };
    const a = await loadCheckpointModel(ref, engine, {});
    await a.model.release();
    // Identical bytes under another name share the entry built by the first test.
    expect(a.converted).toBe(false);
    const sidecar = JSON.parse(await readFile(file.replace('.safetensors', '.json'), 'utf8'));
    sidecar.unet.attention_head_dim = 4;
    await writeFile(file.replace('.safetensors', '.json'), JSON.stringify(sidecar));
    const b = await loadCheckpointModel(ref, engine, {});
    await b.model.release();
    expect(b.converted).toBe(true);
    expect(b.cacheDir).not.toBe(a.cacheDir);
    expect((await stat(path.join(b.cacheDir, 'unet/model.onnx_data'))).size).toBeGreaterThan(0);
  });
});
