/**
 * Issue 15: a transformer-only (or encoder-less) file whose sidecar names no `base` takes its text encoders and VAE
 * from the deployment's default for its family (DEFAULT_BASE_FLUX / DEFAULT_BASE_SD3, checkpoints/default-bases.ts);
 * without either it is listed as broken, the reason saying what to add. Fixtures: ../shared/fixtures/checkpoints-dit.
 */
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointEngineFor } from '../../gpu-service/src/checkpoints/checkpoint-engine';
import { loadDefaultBases } from '../../gpu-service/src/checkpoints/default-bases';
import { generate } from '../../gpu-service/src/diffusion/pipelines/generate';
import { ModelRegistry } from '../../gpu-service/src/models/model-registry';
import { GenerationJobSchema } from '../../shared/src/generation-job';
import { fixtureDir, hasFixture } from '../helpers/checkpoint-fixtures';
import { addFixtureDiffusersFolder, makeModelsDir, TOKENIZER_SUBDIR } from '../helpers/checkpoint-models-dir';

const available = hasFixture('checkpoints-dit') && hasFixture('clip-tokenizer');
const FLUX_BASE = 'flux/schnell-diffusers';
const SD3_BASE = 'sd35/diffusers';
let modelsDir: string;
const registries: ModelRegistry[] = [];

function registryWith(defaultBases: Record<string, string>): ModelRegistry {
  const checkpoints = checkpointEngineFor(modelsDir, { floatType: 'float32', attention: 'contrib', tokenizerDir: path.join(modelsDir, TOKENIZER_SUBDIR), defaultBases });
  const registry = new ModelRegistry(modelsDir, { sessionOptions: {}, checkpoints, warmUp: false });
  registries.push(registry);
  return registry;
}

describe('loadDefaultBases', () => {
  it('reads DEFAULT_BASE_<FAMILY>, blank = none', () => {
    expect(loadDefaultBases({ DEFAULT_BASE_FLUX: ' flux/FLUX.1-schnell ', DEFAULT_BASE_SD3: '', DEFAULT_BASE_SDXL: 'sdxl/base.safetensors' })).toEqual({ flux: 'flux/FLUX.1-schnell', sdxl: 'sdxl/base.safetensors' });
    expect(loadDefaultBases({})).toEqual({});
  });

  it('refuses a value that is not a model id, naming the variable', () => {
    expect(() => loadDefaultBases({ DEFAULT_BASE_FLUX: '/abs/path' })).toThrow(/DEFAULT_BASE_FLUX must be a model id/);
    expect(() => loadDefaultBases({ DEFAULT_BASE_SD3: 'a/../b' })).toThrow(/DEFAULT_BASE_SD3/);
  });
});

beforeAll(async () => {
  if (!available) return;
  modelsDir = await makeModelsDir('default-base-');
  await addFixtureDiffusersFolder(modelsDir, 'checkpoints-dit/flux-schnell', FLUX_BASE);
  await addFixtureDiffusersFolder(modelsDir, 'checkpoints-dit/sd3.5', SD3_BASE);
  const dit = fixtureDir('checkpoints-dit/flux-schnell');
  const transformerConfig = JSON.parse(await readFile(path.join(dit, 'diffusers/transformer/config.json'), 'utf8')) as Record<string, unknown>;
  const put = async (from: string, id: string, sidecar?: Record<string, unknown>) => {
    const target = path.join(modelsDir, 'checkpoints', id);
    await mkdir(path.dirname(target), { recursive: true });
    await copyFile(from, target);
    if (sidecar) await writeFile(target.replace(/\.(gguf|safetensors)$/, '.json'), JSON.stringify(sidecar));
  };
  // Sidecars with only what the tensors cannot tell (the tiny model's RoPE split), no "base".
  const ropeOnly = { transformer: { axes_dims_rope: transformerConfig.axes_dims_rope } };
  await put(path.join(dit, 'flux1-schnell-tiny.safetensors'), 'flux/schnell-bf16.safetensors', ropeOnly);
  await put(path.join(dit, 'flux1-schnell-tiny-Q4_0.gguf'), 'flux/schnell-Q4_0.gguf', ropeOnly);
  // A sidecar base wins over the deployment's default.
  await put(path.join(dit, 'flux1-schnell-tiny-Q4_0.gguf'), 'flux/own-base-Q4_0.gguf', { ...ropeOnly, base: FLUX_BASE });
  // An SD 3.5 single file (MMDiT + VAE, no text encoders) with no sidecar at all.
  await put(path.join(fixtureDir('checkpoints-dit/sd3.5'), 'sd3.5-tiny.safetensors'), 'sd35/sd3.5-tiny.safetensors');
}, 120_000);
afterAll(async () => {
  for (const r of registries) await r.close();
  if (modelsDir) await rm(modelsDir, { recursive: true, force: true });
});

describe.skipIf(!available)('files without a sidecar base take the deployment default for their family', () => {
  it('are listed usable with DEFAULT_BASE_FLUX / DEFAULT_BASE_SD3 set', async () => {
    const rows = await registryWith({ flux: FLUX_BASE, sd3: SD3_BASE }).list();
    const row = (id: string) => rows.find((r) => r.id === id);
    expect(row('flux/schnell-Q4_0.gguf')).toMatchObject({ architecture: 'FLUX.1-schnell', stored_dtype: 'Q4_0', capabilities: ['txt2img', 'img2img', 'inpaint'] });
    expect(row('flux/schnell-Q4_0.gguf')?.error).toBeUndefined();
    expect(row('flux/schnell-bf16.safetensors')?.error).toBeUndefined();
    expect(row('sd35/sd3.5-tiny.safetensors')).toMatchObject({ architecture: 'Stable Diffusion 3.x', capabilities: ['txt2img', 'img2img', 'inpaint'] });
    expect(row('sd35/sd3.5-tiny.safetensors')?.error).toBeUndefined();
  });

  it('give the base folder’s own image, byte for byte (the BFL file and the SD 3.5 single file hold its tensors)', async () => {
    const registry = registryWith({ flux: FLUX_BASE, sd3: SD3_BASE });
    const job = GenerationJobSchema.parse({ id: 'j', model: 'x', prompt: 'a lighthouse', width: 64, height: 64, steps: 2, seed: 3, cfg_scale: 1, sampler: 'euler', scheduler: 'simple' });
    const own = await generate(await registry.get('flux/schnell-bf16.safetensors'), job);
    const folder = await generate(await registry.get(FLUX_BASE), job);
    expect(Buffer.from(own[0].rgb).equals(Buffer.from(folder[0].rgb))).toBe(true);
    const sd3Job = { ...job, cfg_scale: 4.5, negative_prompt: 'blurry' };
    const single = await generate(await registry.get('sd35/sd3.5-tiny.safetensors'), sd3Job);
    const sd3Folder = await generate(await registry.get(SD3_BASE), sd3Job);
    expect(Buffer.from(single[0].rgb).equals(Buffer.from(sd3Folder[0].rgb))).toBe(true);
  });

  it('a sidecar base wins; a default naming no checkpoint leaves the file broken saying which variable', async () => {
    const rows = await registryWith({ flux: 'flux/nothing-here' }).list();
    const row = (id: string) => rows.find((r) => r.id === id);
    expect(row('flux/own-base-Q4_0.gguf')?.error).toBeUndefined();
    expect(row('flux/schnell-Q4_0.gguf')?.error).toBe('DEFAULT_BASE_FLUX\'s base "flux/nothing-here" is not a checkpoint in MODELS_DIR/checkpoints');
    expect(row('flux/schnell-Q4_0.gguf')?.capabilities).toEqual([]);
  });

  it('without a sidecar base or a default, the files are broken and the reason says what to add', async () => {
    const rows = await registryWith({}).list();
    const row = (id: string) => rows.find((r) => r.id === id);
    expect(row('flux/schnell-Q4_0.gguf')?.error).toMatch(/needs a sidecar \{"base": "<model id>"\} or the deployment's DEFAULT_BASE_FLUX/);
    expect(row('sd35/sd3.5-tiny.safetensors')?.error).toMatch(/needs a sidecar \{"base": "<model id>"\} or the deployment's DEFAULT_BASE_SD3/);
    expect(row('flux/schnell-Q4_0.gguf')?.capabilities).toEqual([]);
  });
});
