/**
 * Loads tiny-model variants (generated once per test process into a temp folder) with the real model loader.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateTinyModel, TINY_VARIANTS } from '../../scripts/tiny-model/generate';
import { loadDiffusionModel, type DiffusionModel } from '../../gpu-service/src/models/diffusion-model';
import { GenerationJobSchema, type GenerationJob, type GenerationJobInput } from '@image-api/shared/generation-job';

const root = mkdtemp(join(tmpdir(), 'tiny-variants-'));
const loaded = new Map<string, Promise<DiffusionModel>>();

/** The named variant of the tiny model, loaded with onnxruntime (CPU, 1 thread). */
export function tinyVariant(name: keyof typeof TINY_VARIANTS | string): Promise<DiffusionModel> {
  let p = loaded.get(name);
  if (!p) {
    p = (async () => {
      const dir = join(await root, name);
      await generateTinyModel(dir, TINY_VARIANTS[name]);
      return loadDiffusionModel(dir, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
    })();
    loaded.set(name, p);
  }
  return p;
}

/** A parsed GenerationJob with test defaults (64×64, 8 euler steps, cfg 5, seed 42). */
export function testJob(over: Partial<GenerationJobInput> = {}): GenerationJob {
  return GenerationJobSchema.parse({
    id: 'test',
    model: 'tiny-analytic',
    prompt: 'a red apple',
    width: 64,
    height: 64,
    seed: 42,
    steps: 8,
    sampler: 'euler',
    scheduler: 'normal',
    cfg_scale: 5,
    ...over,
  });
}
