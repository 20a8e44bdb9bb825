/**
 * Transformer-only FLUX files with a sidecar `{"base": "<model id>"}` (issue 15's UNet/transformer-only layout)
 * through the registry: city96's Q8_0 / Q4_0 GGUF files and the BFL bf16 safetensors file take their CLIP-L, T5,
 * VAE, tokenizers and scheduler from the fixture's diffusers folder. The listing shows them as FLUX.1-schnell with
 * their quantization; the loaded GGUF transformer reproduces the fixture's gguf_* reference (weights dequantized
 * in float32) within atol; the BFL file, whose tensors equal the diffusers folder's, gives the folder's image
 * exactly; a base that is missing, of another family, or the file itself leaves the file listed as broken with why.
 * A generated FLUX.1-dev-style transformer on the schnell base keeps dev's scheduler and takes its guidance input.
 */
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointEngineFor } from '../../gpu-service/src/checkpoints/checkpoint-engine';
import { fluxTensorShapes } from '../../gpu-service/src/checkpoints/detect/flux-config';
import { writeSafetensors } from '../../gpu-service/src/weights/safetensors-writer';
import { createMulberry32 } from '../../scripts/tiny-model/prng';
import { generate } from '../../gpu-service/src/diffusion/pipelines/generate';
import { ModelRegistry } from '../../gpu-service/src/models/model-registry';
import { GenerationJobSchema } from '../../shared/src/generation-job';
import { expectWithinAtol, fixtureDir, hasFixture, openFixtureFamily, type FixtureFamily } from '../helpers/checkpoint-fixtures';
import { addFixtureDiffusersFolder, makeModelsDir, TOKENIZER_SUBDIR } from '../helpers/checkpoint-models-dir';

const available = hasFixture('checkpoints-dit') && hasFixture('clip-tokenizer');
const BASE = 'flux/schnell-diffusers';
let modelsDir: string;
let registry: ModelRegistry;
let fam: FixtureFamily;

async function addTransformer(file: string, id: string, sidecar?: Record<string, unknown>): Promise<void> {
  const target = path.join(modelsDir, 'checkpoints', id);
  await mkdir(path.dirname(target), { recursive: true });
  await copyFile(path.join(fixtureDir('checkpoints-dit/flux-schnell'), file), target);
  if (sidecar) await writeFile(target.replace(/\.(gguf|safetensors)$/, '.json'), JSON.stringify(sidecar));
}

beforeAll(async () => {
  if (!available) return;
  // What the tensors cannot tell (the RoPE split of the tiny model's 16-wide heads) goes into the sidecar, as for
  // any single file; the rest comes from the base.
  const transformerConfig = JSON.parse(await readFile(path.join(fixtureDir('checkpoints-dit/flux-schnell'), 'diffusers/transformer/config.json'), 'utf8')) as Record<string, unknown>;
  const sidecar = { base: BASE, transformer: { axes_dims_rope: transformerConfig.axes_dims_rope } };
  modelsDir = await makeModelsDir('flow-base-');
  await addFixtureDiffusersFolder(modelsDir, 'checkpoints-dit/flux-schnell', BASE);
  await addFixtureDiffusersFolder(modelsDir, 'checkpoints-dit/sd3.5', 'sd35/diffusers');
  await addTransformer('flux1-schnell-tiny-Q8_0.gguf', 'flux/schnell-Q8_0.gguf', sidecar);
  await addTransformer('flux1-schnell-tiny-Q4_0.gguf', 'flux/schnell-Q4_0.gguf', sidecar);
  await addTransformer('flux1-schnell-tiny.safetensors', 'flux/schnell-bf16.safetensors', sidecar);
  const sd3 = path.join(modelsDir, 'checkpoints', 'sd35/sd3.5-tiny.safetensors');
  await copyFile(path.join(fixtureDir('checkpoints-dit/sd3.5'), 'sd3.5-tiny.safetensors'), sd3);
  await writeFile(sd3.replace(/\.safetensors$/, '.json'), JSON.stringify({ base: 'sd35/diffusers' }));
  await addTransformer('flux1-schnell-tiny-Q4_0.gguf', 'broken/no-base.gguf');
  await addTransformer('flux1-schnell-tiny-Q4_0.gguf', 'broken/unknown-base.gguf', { base: 'flux/nothing-here' });
  await addTransformer('flux1-schnell-tiny-Q4_0.gguf', 'broken/sd3-base.gguf', { base: 'sd35/diffusers' });
  await addTransformer('flux1-schnell-tiny-Q4_0.gguf', 'broken/self.gguf', { base: 'broken/self.gguf' });
  const checkpoints = checkpointEngineFor(modelsDir, { floatType: 'float32', attention: 'contrib', tokenizerDir: path.join(modelsDir, TOKENIZER_SUBDIR) });
  registry = new ModelRegistry(modelsDir, { sessionOptions: {}, checkpoints, warmUp: false });
  fam = await openFixtureFamily('checkpoints-dit/flux-schnell');
}, 120_000);
afterAll(async () => {
  await registry?.close();
  await fam?.reference.close();
  if (modelsDir) await rm(modelsDir, { recursive: true, force: true });
});

describe.skipIf(!available)('transformer-only FLUX files with a sidecar base', () => {
  it('are listed as FLUX.1-schnell with their quantization, flow prediction and the samplers that apply; broken ones say why', async () => {
    const rows = await registry.list();
    const row = (id: string) => rows.find((r) => r.id === id);
    expect(row('flux/schnell-Q8_0.gguf')).toMatchObject({
      kind: 'checkpoint',
      format: 'gguf',
      architecture: 'FLUX.1-schnell',
      prediction_type: 'flow',
      stored_dtype: 'Q8_0',
      gguf_architecture: 'flux',
      capabilities: ['txt2img', 'img2img', 'inpaint'],
      native_size: [128, 128],
      samplers: expect.arrayContaining(['euler', 'heun']),
    });
    expect(row('flux/schnell-Q8_0.gguf')?.error).toBeUndefined();
    expect(row('flux/schnell-Q4_0.gguf')).toMatchObject({ stored_dtype: 'Q4_0', architecture: 'FLUX.1-schnell' });
    expect(row('flux/schnell-bf16.safetensors')).toMatchObject({ format: 'safetensors', stored_dtype: 'BF16', architecture: 'FLUX.1-schnell' });
    expect(row(BASE)).toMatchObject({ format: 'diffusers', architecture: 'FLUX.1-schnell', prediction_type: 'flow' });
    expect(row('sd35/diffusers')).toMatchObject({ architecture: 'Stable Diffusion 3.x', prediction_type: 'flow', native_size: [128, 128] });
    expect(row('sd35/sd3.5-tiny.safetensors')).toMatchObject({ format: 'safetensors', architecture: 'Stable Diffusion 3.x', stored_dtype: 'F16' });
    expect(row('sd35/sd3.5-tiny.safetensors')?.error).toBeUndefined();
    expect(row('broken/no-base.gguf')?.error).toMatch(/needs a sidecar \{"base": "<model id>"\}/);
    expect(row('broken/unknown-base.gguf')?.error).toMatch(/the sidecar's base "flux\/nothing-here" is not a checkpoint in MODELS_DIR\/checkpoints/);
    expect(row('broken/sd3-base.gguf')?.error).toMatch(/base "sd35\/diffusers" is a Stable Diffusion 3\.x model; this FLUX\.1 file needs a base of its own family/);
    expect(row('broken/self.gguf')?.error).toMatch(/is the file itself/);
    for (const id of ['broken/no-base.gguf', 'broken/unknown-base.gguf']) expect(row(id)?.capabilities).toEqual([]);
  });

  for (const quant of ['Q8_0', 'Q4_0'] as const) {
    it(`the loaded ${quant} transformer matches flux.transformer.square.gguf_${quant} (float32 dequantization) within atol`, async () => {
      const model = await registry.get(`flux/schnell-${quant}.gguf`);
      const c = fam.case(`flux.transformer.square.gguf_${quant}`);
      const feeds: Record<string, { data: Float32Array; dims: number[] }> = {};
      for (const [input, tensor] of Object.entries(c.inputs)) {
        const t = await fam.tensor(tensor);
        feeds[input] = { data: t.data, dims: t.shape };
      }
      const out = await model.flow!.transformer.run(feeds, ['out_sample']);
      const ref = await fam.tensor(Object.values(c.outputs)[0]);
      expectWithinAtol(c.id, out.out_sample.data, ref.data, c.tolerance.atol!);
    });
  }

  it('the BFL bf16 file (and an SD 3.5 single file) with the diffusers folder as base give the folder’s own image, byte for byte', async () => {
    const job = GenerationJobSchema.parse({ id: 'j', model: 'x', prompt: 'a lighthouse', width: 64, height: 64, steps: 2, seed: 3, cfg_scale: 1, sampler: 'euler', scheduler: 'simple' });
    const own = await generate(await registry.get('flux/schnell-bf16.safetensors'), job);
    const folder = await generate(await registry.get(BASE), job);
    expect(Buffer.from(own[0].rgb).equals(Buffer.from(folder[0].rgb))).toBe(true);
    // An SD 3.5 single file (MMDiT + VAE, no text encoders) takes only its encoders from the base: the folder's image.
    const sd3Job = { ...job, cfg_scale: 4.5, negative_prompt: 'blurry' };
    const single = await generate(await registry.get('sd35/sd3.5-tiny.safetensors'), sd3Job);
    const sd3Folder = await generate(await registry.get('sd35/diffusers'), sd3Job);
    expect(Buffer.from(single[0].rgb).equals(Buffer.from(sd3Folder[0].rgb))).toBe(true);
    // The receipt's model hash covers both the transformer file and the base's files.
    expect((await registry.get('flux/schnell-bf16.safetensors')).contentHash).not.toBe((await registry.get(BASE)).contentHash);
  });
});

describe.skipIf(!available)('a FLUX.1-dev-style transformer (guidance_in) on the schnell base', () => {
  const DEV = 'flux/dev-tiny.safetensors';
  beforeAll(async () => {
    const transformerConfig = JSON.parse(await readFile(path.join(fixtureDir('checkpoints-dit/flux-schnell'), 'diffusers/transformer/config.json'), 'utf8')) as Record<string, unknown>;
    // The fixture's transformer architecture with the dev guidance embedder, random weights.
    const shapes = fluxTensorShapes({ hiddenSize: 32, headDim: 16, depth: 2, depthSingleBlocks: 3, inChannels: 64, outChannels: 64, contextDim: 64, pooledDim: 16, timestepEmbedDim: 256, mlpHiddenDim: 128, guidanceEmbed: true, qkvBias: true });
    const next = createMulberry32(99);
    const target = path.join(modelsDir, 'checkpoints', DEV);
    await writeSafetensors(
      target,
      [...shapes].map(([key, dims]) => ({ key, dtype: 'F32' as const, shape: dims, values: () => Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => (key.endsWith('.scale') ? 1 : 0) + (next() * 2 - 1) * 0.3) })),
    );
    await writeFile(target.replace(/\.safetensors$/, '.json'), JSON.stringify({ base: BASE, transformer: { axes_dims_rope: transformerConfig.axes_dims_rope } }));
  });

  it('is listed as FLUX.1-dev, keeps dev’s dynamic shifting, and its guidance input changes the image (default 3.5)', async () => {
    const rows = await registry.list();
    expect(rows.find((r) => r.id === DEV)).toMatchObject({ architecture: 'FLUX.1-dev', prediction_type: 'flow' });
    const model = await registry.get(DEV);
    expect(model.flow).toMatchObject({ guidanceEmbed: true, scheduler: { use_dynamic_shifting: true } });
    const job = (guidance?: number) =>
      GenerationJobSchema.parse({ id: 'j', model: DEV, prompt: 'a lighthouse', width: 64, height: 64, steps: 2, seed: 3, cfg_scale: 1, sampler: 'euler', scheduler: 'simple', ...(guidance === undefined ? {} : { guidance }) });
    const [low] = await generate(model, job(1.5));
    const [high] = await generate(model, job(6));
    const [byDefault] = await generate(model, job());
    const [explicit] = await generate(model, job(3.5));
    expect(Buffer.from(low.rgb).equals(Buffer.from(high.rgb))).toBe(false);
    expect(Buffer.from(byDefault.rgb).equals(Buffer.from(explicit.rgb))).toBe(true);
  });
});
