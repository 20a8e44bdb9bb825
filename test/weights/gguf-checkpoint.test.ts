/**
 * GGUF checkpoints through the engine's open step (openCheckpoint with format 'gguf'):
 * - a whole model in stable-diffusion.cpp's layout (the sd15-tiny single file's LDM keys written as GGUF) opens
 *   like the safetensors single file, is described identically and generates diffusers' txt2img image;
 * - UNet-only files — stable-diffusion.cpp's prefixed UNet (the fixture), ComfyUI-GGUF's prefix-less UNet with a
 *   flattened tensor, city96's FLUX transformer — open with `unetOnly`, the sidecar's `base`, and the file's
 *   architecture and quantization in `metadata`;
 * - a broken GGUF file is refused with the reader's reason.
 */
import { mkdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GenerationJobSchema } from '@image-api/shared/generation-job';
import { ContentHashes } from '../../gpu-service/src/checkpoints/content-hash';
import { ConversionCache } from '../../gpu-service/src/checkpoints/conversion-cache';
import { loadCheckpointModel, openCheckpoint, type CheckpointEngineOptions } from '../../gpu-service/src/checkpoints/checkpoint-engine';
import { detectUnetConfig } from '../../gpu-service/src/checkpoints/detect/unet-config';
import { describeFlowModel } from '../../gpu-service/src/checkpoints/flow-spec';
import { describeModel } from '../../gpu-service/src/checkpoints/model-spec';
import { openSingleFile } from '../../gpu-service/src/checkpoints/open-checkpoint';
import { generate } from '../../gpu-service/src/diffusion/pipelines/generate';
import { openGguf } from '../../gpu-service/src/weights/gguf';
import { writeGguf, type GgufTensorToWrite } from '../../gpu-service/src/weights/gguf-writer';
import { openSafetensors } from '../../gpu-service/src/weights/safetensors';
import { WeightsFileError } from '../../gpu-service/src/weights/tensor-file';
import { WeightSet } from '../../gpu-service/src/weights/weight-set';
import { fixtureDir, hasFixture } from '../helpers/checkpoint-fixtures';
import { makeModelsDir, TOKENIZER_SUBDIR } from '../helpers/checkpoint-models-dir';

const available = hasFixture('checkpoints') && hasFixture('clip-tokenizer');
const SD15 = () => fixtureDir('checkpoints/sd15-tiny');

let modelsDir: string;
let engine: CheckpointEngineOptions;
let sidecar: Record<string, unknown>;
beforeAll(async () => {
  if (!available) return;
  modelsDir = await makeModelsDir('gguf-engine-');
  await mkdir(path.join(modelsDir, 'checkpoints'), { recursive: true });
  const cache = new ConversionCache(path.join(modelsDir, '.cache'));
  engine = { cache, hashes: new ContentHashes(cache.root), tokenizerDir: path.join(modelsDir, TOKENIZER_SUBDIR), floatType: 'float32', attention: 'contrib' };
  const { unet, vae, text_encoder, scheduler } = JSON.parse(await readFile(path.join(SD15(), 'cases.json'), 'utf8')).configs;
  sidecar = { unet, vae, text_encoder, scheduler };
});
afterAll(async () => {
  if (modelsDir) await rm(modelsDir, { recursive: true, force: true });
});

/** Every float tensor of a safetensors file as F16 GGUF tensors (renamed by `rename`; undefined drops one). */
async function ggufTensorsOf(file: string, rename: (key: string) => string | undefined = (k) => k): Promise<GgufTensorToWrite[]> {
  const st = await openSafetensors(file);
  const values = new Map<string, Float32Array>();
  const out: GgufTensorToWrite[] = [];
  for (const e of st.entries.values()) {
    const name = rename(e.key);
    // stable-diffusion.cpp keeps no position_ids (an int64 index table, not a weight).
    if (!name || !['F32', 'F16', 'BF16'].includes(e.dtype)) continue;
    values.set(name, await st.readFloat32(e.key));
    out.push({ name, type: 'F16', shape: e.shape, data: () => values.get(name)! });
  }
  await st.close();
  return out;
}

describe.skipIf(!available)('GGUF checkpoints in the engine', () => {
  it('a whole model in stable-diffusion.cpp’s layout opens like the single file and generates diffusers’ txt2img image', async () => {
    const file = path.join(modelsDir, 'checkpoints', 'sd15-tiny.gguf');
    await writeGguf(file, await ggufTensorsOf(path.join(SD15(), 'sd15-tiny.safetensors')));
    await writeFile(file.replace(/\.gguf$/, '.json'), JSON.stringify(sidecar));
    const single = path.join(modelsDir, 'checkpoints', 'sd15-tiny.safetensors');
    await writeFile(single, await readFile(path.join(SD15(), 'sd15-tiny.safetensors')));
    await writeFile(single.replace(/\.safetensors$/, '.json'), JSON.stringify(sidecar));

    const parts = await openCheckpoint({ id: 'sd15-tiny.gguf', path: file, format: 'gguf' });
    const reference = await openSingleFile(single);
    try {
      expect(parts).toMatchObject({ kind: 'single-file', family: 'sd1', unetOnly: false, contentFiles: [file] });
      expect(parts.textEncoders.map((t) => [t.role, t.layout, t.prefix])).toEqual(reference.textEncoders.map((t) => [t.role, t.layout, t.prefix]));
      // stable-diffusion.cpp writes no general.architecture.
      expect(parts.metadata).toEqual({ tensorTypes: { F16: parts.unet.names().length + parts.vae!.names().length + parts.textEncoders[0].weights.names().length } });
      const [spec, refSpec] = [await describeModel(parts), await describeModel(reference)];
      for (const field of ['family', 'architecture', 'scheduler', 'predictionType', 'nativeSize', 'capabilities', 'storedDtype'] as const) {
        expect(spec[field], field).toEqual(refSpec[field]);
      }
      // The single file also counts its text encoder's position_ids (77 indices), which the GGUF does not carry.
      expect(spec.parameterCount).toBe(refSpec.parameterCount - 77);
      expect(spec.unet.config).toEqual(refSpec.unet.config);
      expect(spec.vae!.config).toEqual(refSpec.vae!.config);
      expect(spec.textEncoders.map((t) => t.config)).toEqual(refSpec.textEncoders.map((t) => t.config));
    } finally {
      await parts.close();
      await reference.close();
    }

    const cases = JSON.parse(await readFile(path.join(SD15(), 'cases.json'), 'utf8')).cases as Array<Record<string, unknown>>;
    const c = cases.find((x) => x.id === 'sd15.pipeline.txt2img')!;
    const loaded = await loadCheckpointModel({ id: 'sd15-tiny.gguf', path: file, format: 'gguf' }, engine, { executionProviders: ['cpu'] });
    try {
      const job = GenerationJobSchema.parse({ id: 'gguf', model: 'sd15-tiny.gguf', prompt: c.prompt, negative_prompt: c.negative_prompt, width: 64, height: 64, seed: c.noise_seed, steps: c.steps, sampler: 'euler', scheduler: 'simple', cfg_scale: c.guidance_scale });
      const [image] = await generate(loaded.model, { ...job, width: c.width as number, height: c.height as number });
      const { data } = await sharp(await readFile(path.join(SD15(), c.png as string))).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      let worst = 0;
      for (let i = 0; i < data.length; i++) worst = Math.max(worst, Math.abs(data[i] - image.rgb[i]));
      expect(worst, 'largest channel difference from images/txt2img.png').toBeLessThanOrEqual(1);
    } finally {
      await loaded.model.release();
    }
  });

  it('stable-diffusion.cpp’s UNet-only file opens with unetOnly, its architecture, quantization and the sidecar’s base', async () => {
    const file = path.join(modelsDir, 'checkpoints', 'sd15-unet-q8_0.gguf');
    await writeFile(file, await readFile(path.join(SD15(), 'gguf', 'sd15-tiny-unet-q8_0.gguf')));
    await writeFile(file.replace(/\.gguf$/, '.json'), JSON.stringify({ base: 'sd15-tiny.safetensors', unet: sidecar.unet }));
    const parts = await openCheckpoint({ id: 'sd15-unet-q8_0.gguf', path: file, format: 'gguf' });
    try {
      expect(parts).toMatchObject({ family: 'sd1', unetOnly: true, vae: undefined, textEncoders: [] });
      expect(parts.configs.base).toBe('sd15-tiny.safetensors');
      expect(parts.metadata).toEqual({ architecture: 'sd1', quantization: 'Q8_0', tensorTypes: { F16: 183, Q8_0: 121 } });
      expect(parts.unet.has('input_blocks.1.1.proj_in.weight')).toBe(true);
      await expect(describeModel(parts)).rejects.toThrow(/holds only a UNet: name the model that supplies its text encoder and VAE in a sidecar \{"base"/);
    } finally {
      await parts.close();
    }
  });

  it('a ComfyUI-GGUF UNet (no prefix, a tensor flattened with comfy.gguf.orig_shape) is the same UNet', async () => {
    const prefixed = await openGguf(path.join(SD15(), 'gguf', 'sd15-tiny-unet-f16.gguf'));
    const file = path.join(modelsDir, 'checkpoints', 'comfy-unet.gguf');
    try {
      const tensors: GgufTensorToWrite[] = [];
      for (const e of prefixed.entries.values()) {
        const v = await prefixed.readFloat32(e.key);
        const name = e.key.replace('model.diffusion_model.', '');
        // ComfyUI-GGUF stores a tensor whose rows do not fit its blocks as [n / 256, 256] and records the shape.
        const flatten = name === 'input_blocks.1.1.proj_in.weight';
        tensors.push({ name, type: 'F16', shape: flatten ? [v.length / 256, 256] : e.shape, data: () => v });
      }
      await writeGguf(file, tensors, {
        metadata: [
          { key: 'general.architecture', type: 'string', value: 'sd1' },
          { key: 'comfy.gguf.orig_shape.input_blocks.1.1.proj_in.weight', type: 'array', elementType: 'int32', value: prefixed.entries.get('model.diffusion_model.input_blocks.1.1.proj_in.weight')!.shape },
        ],
      });
      const parts = await openCheckpoint({ id: 'comfy-unet.gguf', path: file, format: 'gguf' });
      try {
        expect(parts).toMatchObject({ family: 'sd1', unetOnly: true, metadata: { architecture: 'sd1', tensorTypes: { F16: 304 } } });
        expect(parts.unet.shape('input_blocks.1.1.proj_in.weight')).toEqual([32, 32, 1, 1]);
        const hints = { attentionHeads: { heads: 8 }, groupNormGroups: 8 };
        expect(detectUnetConfig(parts.unet, hints)).toEqual(detectUnetConfig(WeightSet.fromFile(prefixed, 'model.diffusion_model.'), hints));
      } finally {
        await parts.close();
      }
    } finally {
      await prefixed.close();
    }
  });

  it.skipIf(!hasFixture('checkpoints-dit'))('city96’s FLUX transformer opens as a FLUX.1 transformer alone, listed with its architecture and quantization', async () => {
    const file = path.join(fixtureDir('checkpoints-dit/flux-schnell'), 'flux1-schnell-tiny-Q4_0.gguf');
    const parts = await openCheckpoint({ id: 'flux.gguf', path: file, format: 'gguf' });
    try {
      expect(parts).toMatchObject({ family: 'flux', unetOnly: true, vae: undefined, textEncoders: [] });
      expect(parts.metadata).toMatchObject({ architecture: 'flux', quantization: 'Q4_0', tensorTypes: { Q4_0: 29 } });
      expect(parts.unet.shape('double_blocks.0.img_attn.qkv.weight')).toEqual([96, 32]);
      await expect(describeModel(parts)).rejects.toThrow(/FLUX\.1 checkpoints are flow-matching transformers, described by describeFlowModel/);
      // Alone (no sidecar "base") it lacks its text encoders and VAE.
      await expect(describeFlowModel(parts)).rejects.toThrow(/has no VAE: a FLUX\.1 transformer file needs a sidecar \{"base": "<model id>"\}/);
    } finally {
      await parts.close();
    }
  });

  it('a broken GGUF file is refused with the reason, naming the tensor', async () => {
    const file = path.join(modelsDir, 'checkpoints', 'cut.gguf');
    await writeFile(file, await readFile(path.join(SD15(), 'gguf', 'sd15-tiny-unet-q4_0.gguf')));
    await truncate(file, 1_000_000);
    const err = await openCheckpoint({ id: 'cut.gguf', path: file, format: 'gguf' }).then(
      (p) => (p.close(), undefined),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WeightsFileError);
    expect((err as Error).message).toMatch(/cut\.gguf: not a valid GGUF file: tensor "model\.diffusion_model\.[\w.]+" \((F16|Q4_0) \[[\d, ]+\]\) needs \d+ bytes at byte \d+, but the 1000000-byte file ends first \(truncated\?\)/);
  });
});
