/**
 * Sharded diffusers folders of the flow families: the checkpoints-dit fixtures' FLUX.1-schnell and SD 3.5 folders
 * with `transformer/` split into `diffusion_pytorch_model-0000N-of-00003.safetensors` + its index and the T5 (and
 * SD 3.5's CLIP-G) encoder into `model-0000N-of-00002.safetensors` + `model.safetensors.index.json`, built at test
 * time. They are listed like the unsharded folders and give their images byte for byte (the same weights); a
 * missing shard, or an index placing a tensor in a shard that lacks it, leaves the folder listed as broken with the
 * reason and nothing in the conversion cache.
 */
import { cp, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointEngineFor } from '../../gpu-service/src/checkpoints/checkpoint-engine';
import { generate } from '../../gpu-service/src/diffusion/pipelines/generate';
import { ModelRegistry } from '../../gpu-service/src/models/model-registry';
import { GenerationJobSchema } from '../../shared/src/generation-job';
import { fixtureDir, hasFixture } from '../helpers/checkpoint-fixtures';
import { addFixtureDiffusersFolder, makeModelsDir, TOKENIZER_SUBDIR } from '../helpers/checkpoint-models-dir';
import { writeShards } from '../helpers/flow-layout-files';

const available = hasFixture('checkpoints-dit') && hasFixture('clip-tokenizer');
let modelsDir: string;
let registry: ModelRegistry;

/** Replace `<folder>/<component>/<stem>.safetensors` by `shards` shards and their index. */
async function shard(folder: string, component: string, stem: string, shards: number, edit?: (m: Record<string, string>) => void): Promise<string[]> {
  const dir = path.join(folder, component);
  const file = path.join(dir, `${stem}.safetensors`);
  const tmpCopy = `${file}.orig`;
  await cp(file, tmpCopy);
  await unlink(file);
  const names = await writeShards(tmpCopy, dir, stem, shards, edit);
  await unlink(tmpCopy);
  return names;
}

/** A copy of a fixture folder with the transformer in 3 shards and the given encoders in 2. */
async function shardedFolder(family: string, id: string, encoders: string[]): Promise<string> {
  const folder = await addFixtureDiffusersFolder(modelsDir, family, id);
  await shard(folder, 'transformer', 'diffusion_pytorch_model', 3);
  for (const e of encoders) await shard(folder, e, 'model', 2);
  return folder;
}

const cacheEntries = async () => (await readdir(path.join(modelsDir, '.cache')).catch(() => [] as string[])).sort();

beforeAll(async () => {
  if (!available) return;
  modelsDir = await makeModelsDir('flow-shards-');
  await addFixtureDiffusersFolder(modelsDir, 'checkpoints-dit/flux-schnell', 'flux/diffusers');
  await addFixtureDiffusersFolder(modelsDir, 'checkpoints-dit/sd3.5', 'sd35/diffusers');
  await shardedFolder('checkpoints-dit/flux-schnell', 'flux/sharded', ['text_encoder_2']);
  await shardedFolder('checkpoints-dit/sd3.5', 'sd35/sharded', ['text_encoder_2', 'text_encoder_3']);

  const missing = await addFixtureDiffusersFolder(modelsDir, 'checkpoints-dit/sd3.5', 'broken/missing-shard');
  const names = await shard(missing, 'transformer', 'diffusion_pytorch_model', 3);
  await unlink(path.join(missing, 'transformer', names[2]));
  const misplaced = await addFixtureDiffusersFolder(modelsDir, 'checkpoints-dit/sd3.5', 'broken/misplaced');
  await shard(misplaced, 'text_encoder_3', 'model', 2, (m) => {
    m['shared.weight'] = Object.values(m).find((s) => s !== m['shared.weight'])!;
  });

  const checkpoints = checkpointEngineFor(modelsDir, { floatType: 'float32', attention: 'contrib', tokenizerDir: path.join(modelsDir, TOKENIZER_SUBDIR) });
  registry = new ModelRegistry(modelsDir, { sessionOptions: {}, checkpoints, warmUp: false });
}, 120_000);
afterAll(async () => {
  await registry?.close();
  if (modelsDir) await rm(modelsDir, { recursive: true, force: true });
});

describe.skipIf(!available)('sharded FLUX.1 / SD 3.5 diffusers folders', () => {
  it('are listed like the unsharded folders; a missing or misplaced shard leaves the folder broken with the reason', async () => {
    const rows = await registry.list();
    const row = (id: string) => rows.find((r) => r.id === id);
    for (const [sharded, whole] of [['flux/sharded', 'flux/diffusers'], ['sd35/sharded', 'sd35/diffusers']]) {
      expect(row(sharded)?.error, sharded).toBeUndefined();
      const pick = (r: ReturnType<typeof row>) => ({ architecture: r?.architecture, prediction_type: r?.prediction_type, stored_dtype: r?.stored_dtype, native_size: r?.native_size, capabilities: r?.capabilities });
      expect(pick(row(sharded)), sharded).toEqual(pick(row(whole)));
      expect(row(sharded)?.architecture).toBeTruthy();
    }
    expect(row('broken/missing-shard')?.error).toMatch(/transformer\/diffusion_pytorch_model\.safetensors\.index\.json: lists shard diffusion_pytorch_model-00003-of-00003\.safetensors, which is missing/);
    expect(row('broken/misplaced')?.error).toMatch(/text_encoder_3\/model\.safetensors\.index\.json: places tensor "shared\.weight" in model-0000[12]-of-00002\.safetensors, which has no such tensor/);
    for (const id of ['broken/missing-shard', 'broken/misplaced']) expect(row(id)?.capabilities, id).toEqual([]);
  });

  it('a broken one is refused on use with the reason and leaves nothing in the conversion cache', async () => {
    const before = await cacheEntries();
    await expect(registry.get('broken/missing-shard')).rejects.toThrow(/which is missing/);
    await expect(registry.get('broken/misplaced')).rejects.toThrow(/which has no such tensor/);
    expect(await cacheEntries()).toEqual(before);
  });

  it('give the unsharded folders’ images byte for byte', async () => {
    const job = GenerationJobSchema.parse({ id: 'j', model: 'x', prompt: 'a lighthouse', width: 64, height: 64, steps: 2, seed: 3, cfg_scale: 4.5, negative_prompt: 'blurry', sampler: 'euler', scheduler: 'simple' });
    const [whole] = await generate(await registry.get('sd35/diffusers'), job);
    const [sharded] = await generate(await registry.get('sd35/sharded'), job);
    expect(Buffer.from(sharded.rgb).equals(Buffer.from(whole.rgb))).toBe(true);
    const fluxJob = { ...job, cfg_scale: 1, negative_prompt: '' };
    const [fluxWhole] = await generate(await registry.get('flux/diffusers'), fluxJob);
    const [fluxSharded] = await generate(await registry.get('flux/sharded'), fluxJob);
    expect(Buffer.from(fluxSharded.rgb).equals(Buffer.from(fluxWhole.rgb))).toBe(true);
    // The receipt's hash covers the index and the shards: a sharded copy is its own content.
    expect((await registry.get('sd35/sharded')).contentHash).not.toBe((await registry.get('sd35/diffusers')).contentHash);
  });
});
