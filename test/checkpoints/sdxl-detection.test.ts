/**
 * SDXL model descriptions from generated single files (no fixtures needed): a small SDXL base with SDXL's
 * conventions is described from its tensors alone (pooled width from the bigG projection, 6 time ids from
 * label_emb, context = CLIP-L + bigG widths, VAE 0.13025, 1024² native); a file whose label_emb width does not
 * split into pooled + 6 × 256, or whose cross-attention width is not the encoders' together, is refused with the
 * reason; a refiner-shaped file (bigG only) needs 5 time ids.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeModel } from '../../gpu-service/src/checkpoints/model-spec';
import { openSingleFile } from '../../gpu-service/src/checkpoints/open-checkpoint';
import { writeSyntheticCheckpoint, type SyntheticCheckpoint } from '../../scripts/checkpoints/synthetic-checkpoint';
import { SMALL_SDXL_CHECKPOINT } from '../helpers/small-sdxl-checkpoint';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sdxl-detect-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function describeFile(name: string, spec: SyntheticCheckpoint) {
  const file = path.join(dir, `${name}.safetensors`);
  await writeSyntheticCheckpoint(file, spec);
  const parts = await openSingleFile(file);
  try {
    return await describeModel(parts);
  } finally {
    await parts.close();
  }
}

const base = SMALL_SDXL_CHECKPOINT;

describe('SDXL model descriptions', () => {
  it('describes a base from its tensors and SDXL conventions alone', async () => {
    const spec = await describeFile('base', { ...base });
    expect(spec).toMatchObject({ family: 'sdxl', architecture: 'Stable Diffusion XL', nativeSize: [1024, 1024], predictionType: 'epsilon' });
    expect(spec.sdxl).toEqual({ kind: 'base', pooledDim: 64, timeIdCount: 6, forceZerosForEmptyPrompt: true });
    expect(spec.vae?.config.scalingFactor).toBe(0.13025);
    expect(spec.textEncoders.map((t) => [t.role, t.config.heads, t.padToken])).toEqual([
      ['clip_l', 1, '<|endoftext|>'],
      ['clip_g', 2, '!'],
    ]);
    expect(spec.unet.config.levels.map((l) => [l.transformerDepth, l.heads])).toEqual([
      [[0], 0],
      [[2], 2],
    ]);
  });

  it('refuses a label_emb that is not pooled + 6 time ids, and a context that is not both encoders', async () => {
    await expect(describeFile('ids', { ...base, unet: { ...base.unet, admInChannels: 64 + 5 * 256 } })).rejects.toThrow(/label_emb\.0\.0 takes 1344 inputs: 64 pooled \+ 1280, which is not 6 time ids × 256/);
    await expect(describeFile('ctx', { ...base, unet: { ...base.unet, contextDim: 128 } })).rejects.toThrow(/cross-attention width 128 is not the text encoders' 64 \+ 128 = 192/);
  });

  it('a refiner-shaped file (bigG only under conditioner.embedders.0.model) needs 5 time ids', async () => {
    const refiner: SyntheticCheckpoint = {
      ...base,
      unet: { ...base.unet, contextDim: 128, admInChannels: 64 + 5 * 256 },
      textEncoders: [{ prefix: 'conditioner.embedders.0.model.', arch: base.textEncoders![1].arch }],
    };
    expect((await describeFile('refiner', refiner)).sdxl).toEqual({ kind: 'refiner', pooledDim: 64, timeIdCount: 5, forceZerosForEmptyPrompt: false });
    await expect(describeFile('refiner6', { ...refiner, unet: { ...refiner.unet, admInChannels: 64 + 6 * 256 } })).rejects.toThrow(/not 5 time ids/);
  });
});
