/**
 * FLUX.1 / SD 3.x single files that carry their text encoders (Stability's `sd3.5_large.safetensors`,
 * `sd3_medium_incl_clips*.safetensors`; ComfyUI's all-in-one FLUX saves): built at test time from the
 * checkpoints-dit fixtures' tensors re-keyed into that layout (`model.diffusion_model.*`, `first_stage_model.*` or
 * `vae.*`, `text_encoders.{clip_l,clip_g,t5xxl}.transformer.*`). The same weights give the diffusers folder's image
 * byte for byte (a stored SD 3 CLIP-L projection is ignored, as upstream does); a file with only some encoders takes the rest from its sidecar's base; an encoder prefix with
 * tensors missing, or tensors under an unknown `text_encoders.` prefix, leave the file listed as broken with the
 * reason and nothing in the conversion cache.
 */
import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointEngineFor } from '../../gpu-service/src/checkpoints/checkpoint-engine';
import { generate } from '../../gpu-service/src/diffusion/pipelines/generate';
import { ModelRegistry } from '../../gpu-service/src/models/model-registry';
import { GenerationJobSchema } from '../../shared/src/generation-job';
import { fixtureDir, hasFixture } from '../helpers/checkpoint-fixtures';
import { addFixtureDiffusersFolder, makeModelsDir, TOKENIZER_SUBDIR } from '../helpers/checkpoint-models-dir';
import { collectTensors, prefixed, writeSingleFile, type TensorSource } from '../helpers/flow-layout-files';
import { writeSafetensors } from '../../gpu-service/src/weights/safetensors-writer';
import { createMulberry32 } from '../../scripts/tiny-model/prng';

const available = hasFixture('checkpoints-dit') && hasFixture('clip-tokenizer');
const FLUX = () => fixtureDir('checkpoints-dit/flux-schnell');
const SD3 = () => fixtureDir('checkpoints-dit/sd3.5');
let modelsDir: string;
let registry: ModelRegistry;

const config = async (dir: string, component: string) => JSON.parse(await readFile(path.join(dir, 'diffusers', component, 'config.json'), 'utf8')) as Record<string, unknown>;
const checkpoint = (id: string) => path.join(modelsDir, 'checkpoints', id);
const sidecar = (id: string, body: Record<string, unknown>) => writeFile(checkpoint(id).replace(/\.safetensors$/, '.json'), JSON.stringify(body));
/** The cache's entries (folders other than the content-hash store). */
const cacheEntries = async () => (await readdir(path.join(modelsDir, '.cache')).catch(() => [] as string[])).sort();

/** The SD 3.5 fixture's MMDiT + VAE single file plus the folder's encoders under Stability's prefixes. */
function sd3Sources(encoders: { clipL?: boolean; clipG?: boolean; t5?: boolean }): TensorSource[] {
  const d = path.join(SD3(), 'diffusers');
  return [
    prefixed(path.join(SD3(), 'sd3.5-tiny.safetensors'), ''),
    // Stability's files carry CLIP-L without its (unused) projection.
    ...(encoders.clipL ? [prefixed(path.join(d, 'text_encoder/model.safetensors'), 'text_encoders.clip_l.transformer.', (k) => !k.startsWith('text_projection'))] : []),
    ...(encoders.clipG ? [prefixed(path.join(d, 'text_encoder_2/model.safetensors'), 'text_encoders.clip_g.transformer.')] : []),
    ...(encoders.t5 ? [prefixed(path.join(d, 'text_encoder_3/model.safetensors'), 'text_encoders.t5xxl.transformer.')] : []),
  ];
}

beforeAll(async () => {
  if (!available) return;
  modelsDir = await makeModelsDir('flow-single-');
  await addFixtureDiffusersFolder(modelsDir, 'checkpoints-dit/flux-schnell', 'flux/diffusers');
  await addFixtureDiffusersFolder(modelsDir, 'checkpoints-dit/sd3.5', 'sd35/diffusers');
  // Single files carry no tokenizer: the deployment's T5 tokenizer folder (T5_TOKENIZER_DIR's default).
  await cp(path.join(SD3(), 'diffusers/tokenizer_3'), path.join(modelsDir, 'tokenizers/t5-v1_1-xxl'), { recursive: true });

  // What the tensors cannot tell (CLIP heads, the tiny FLUX's RoPE split) goes into the sidecar, as for any single file.
  const sd3Configs = { text_encoder: await config(SD3(), 'text_encoder'), text_encoder_2: await config(SD3(), 'text_encoder_2'), text_encoder_3: await config(SD3(), 'text_encoder_3') };
  await writeSingleFile(checkpoint('sd35/sd3.5-all.safetensors'), sd3Sources({ clipL: true, clipG: true, t5: true }));
  await sidecar('sd35/sd3.5-all.safetensors', sd3Configs);
  // A CLIP-L text_projection stored anyway (not the identity) is not used: SD 3's CLIP-L pooled output is unprojected.
  const width = (await config(SD3(), 'text_encoder')).hidden_size as number;
  const next = createMulberry32(5);
  await writeSafetensors(checkpoint('sd35/sd3.5-all-proj.safetensors'), [
    ...(await collectTensors(sd3Sources({ clipL: true, clipG: true, t5: true }))),
    { key: 'text_encoders.clip_l.transformer.text_projection.weight', dtype: 'F16', shape: [width, width], values: () => Float32Array.from({ length: width * width }, () => next() * 2 - 1) },
  ]);
  await sidecar('sd35/sd3.5-all-proj.safetensors', sd3Configs);
  await writeSingleFile(checkpoint('sd35/sd3-incl-clips.safetensors'), sd3Sources({ clipL: true, clipG: true }));
  await sidecar('sd35/sd3-incl-clips.safetensors', { base: 'sd35/diffusers', text_encoder: sd3Configs.text_encoder, text_encoder_2: sd3Configs.text_encoder_2 });

  const fd = path.join(FLUX(), 'diffusers');
  const fluxSources = [
    prefixed(path.join(FLUX(), 'flux1-schnell-tiny.safetensors'), 'model.diffusion_model.'),
    prefixed(path.join(FLUX(), 'ae.safetensors'), 'vae.'),
    prefixed(path.join(fd, 'text_encoder/model.safetensors'), 'text_encoders.clip_l.transformer.'),
    prefixed(path.join(fd, 'text_encoder_2/model.safetensors'), 'text_encoders.t5xxl.transformer.'),
  ];
  const fluxConfigs = { transformer: { axes_dims_rope: (await config(FLUX(), 'transformer')).axes_dims_rope }, text_encoder: await config(FLUX(), 'text_encoder'), text_encoder_2: await config(FLUX(), 'text_encoder_2') };
  await writeSingleFile(checkpoint('flux/flux-all.safetensors'), fluxSources);
  await sidecar('flux/flux-all.safetensors', fluxConfigs);

  // Broken: T5's final norm left out; an encoder under a prefix no SD 3 file has.
  await writeSingleFile(checkpoint('broken/t5-incomplete.safetensors'), sd3Sources({ clipL: true, clipG: true, t5: true }), (k) => k === 'text_encoders.t5xxl.transformer.encoder.final_layer_norm.weight');
  await sidecar('broken/t5-incomplete.safetensors', sd3Configs);
  await writeSingleFile(checkpoint('broken/stray-encoder.safetensors'), [...sd3Sources({ clipL: true, clipG: true }), prefixed(path.join(SD3(), 'diffusers/text_encoder_3/model.safetensors'), 'text_encoders.t5xxl.')]);
  await sidecar('broken/stray-encoder.safetensors', sd3Configs);

  const checkpoints = checkpointEngineFor(modelsDir, { floatType: 'float32', attention: 'contrib', tokenizerDir: path.join(modelsDir, TOKENIZER_SUBDIR) });
  registry = new ModelRegistry(modelsDir, { sessionOptions: {}, checkpoints, warmUp: false });
}, 120_000);
afterAll(async () => {
  await registry?.close();
  if (modelsDir) await rm(modelsDir, { recursive: true, force: true });
});

describe.skipIf(!available)('FLUX.1 / SD 3.x single files with their text encoders inside', () => {
  it('are listed with the detected architecture; incomplete or stray encoder tensors leave the file broken with the reason', async () => {
    const rows = await registry.list();
    const row = (id: string) => rows.find((r) => r.id === id);
    for (const id of ['sd35/sd3.5-all.safetensors', 'sd35/sd3.5-all-proj.safetensors', 'sd35/sd3-incl-clips.safetensors']) {
      expect(row(id), id).toMatchObject({ format: 'safetensors', architecture: 'Stable Diffusion 3.x', prediction_type: 'flow', stored_dtype: 'F16', capabilities: ['txt2img', 'img2img', 'inpaint'] });
      expect(row(id)?.error, id).toBeUndefined();
    }
    expect(row('flux/flux-all.safetensors')).toMatchObject({ architecture: 'FLUX.1-schnell', prediction_type: 'flow', stored_dtype: 'BF16' });
    expect(row('flux/flux-all.safetensors')?.error).toBeUndefined();
    expect(row('broken/t5-incomplete.safetensors')?.error).toMatch(/has no tensor "encoder\.final_layer_norm\.weight"/);
    expect(row('broken/stray-encoder.safetensors')?.error).toMatch(/"text_encoders\.t5xxl\.[^"]+" is under no text-encoder prefix a Stable Diffusion 3\.x file has/);
    for (const id of ['broken/t5-incomplete.safetensors', 'broken/stray-encoder.safetensors']) expect(row(id)?.capabilities, id).toEqual([]);
  });

  it('a broken one is refused on use with the reason and leaves nothing in the conversion cache', async () => {
    const before = await cacheEntries();
    await expect(registry.get('broken/t5-incomplete.safetensors')).rejects.toThrow(/encoder\.final_layer_norm\.weight/);
    await expect(registry.get('broken/stray-encoder.safetensors')).rejects.toThrow(/under no text-encoder prefix/);
    expect(await cacheEntries()).toEqual(before);
  });

  it('give the diffusers folder’s image byte for byte (all encoders inside; CLIP-L + CLIP-G inside with T5 from the base)', async () => {
    const job = GenerationJobSchema.parse({ id: 'j', model: 'x', prompt: 'a lighthouse', width: 64, height: 64, steps: 2, seed: 3, cfg_scale: 4.5, negative_prompt: 'blurry', sampler: 'euler', scheduler: 'simple' });
    const [folder] = await generate(await registry.get('sd35/diffusers'), job);
    const [all] = await generate(await registry.get('sd35/sd3.5-all.safetensors'), job);
    const [inclClips] = await generate(await registry.get('sd35/sd3-incl-clips.safetensors'), job);
    const [withProjection] = await generate(await registry.get('sd35/sd3.5-all-proj.safetensors'), job);
    expect(Buffer.from(all.rgb).equals(Buffer.from(folder.rgb))).toBe(true);
    expect(Buffer.from(withProjection.rgb).equals(Buffer.from(folder.rgb))).toBe(true);
    expect(Buffer.from(inclClips.rgb).equals(Buffer.from(folder.rgb))).toBe(true);
    // A different prompt changes the image (the encoders inside the file are the ones used).
    const [other] = await generate(await registry.get('sd35/sd3.5-all.safetensors'), { ...job, prompt: 'a forest' });
    expect(Buffer.from(other.rgb).equals(Buffer.from(all.rgb))).toBe(false);

    const fluxJob = { ...job, cfg_scale: 1, negative_prompt: '' };
    const [fluxFolder] = await generate(await registry.get('flux/diffusers'), fluxJob);
    const [fluxAll] = await generate(await registry.get('flux/flux-all.safetensors'), fluxJob);
    expect(Buffer.from(fluxAll.rgb).equals(Buffer.from(fluxFolder.rgb))).toBe(true);
  });
});

describe.skipIf(!available)('the T5 tokenizer of a single file with T5 inside', () => {
  it('comes from T5_TOKENIZER_DIR; without one the file is listed broken saying where to put tokenizer.json', async () => {
    const dir = await makeModelsDir('flow-single-tok-');
    try {
      await mkdir(path.join(dir, 'checkpoints'), { recursive: true });
      await cp(checkpoint('sd35/sd3.5-all.safetensors'), path.join(dir, 'checkpoints/all.safetensors'));
      await cp(checkpoint('sd35/sd3.5-all.json'), path.join(dir, 'checkpoints/all.json'));
      const engine = checkpointEngineFor(dir, { floatType: 'float32', attention: 'contrib', tokenizerDir: path.join(dir, TOKENIZER_SUBDIR) });
      const reg = new ModelRegistry(dir, { sessionOptions: {}, checkpoints: engine, warmUp: false });
      const [row] = (await reg.list()).filter((r) => r.id === 'all.safetensors');
      await reg.close();
      expect(row.error).toMatch(/the T5 tokenizer is missing: .*put the T5 tokenizer\.json \(google\/t5-v1_1-xxl\) into .*tokenizers\/t5-v1_1-xxl/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
