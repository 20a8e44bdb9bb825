/**
 * Opens a diffusers folder of a flow-matching transformer pipeline into CheckpointParts:
 * - `FluxPipeline`: `transformer/` (FluxTransformer2DModel, renamed to BFL keys by key-maps/diffusers-flux.ts),
 *   `vae/`, `text_encoder/` (CLIP-L, `CLIPTextModel`), `text_encoder_2/` (T5), `tokenizer/`, `tokenizer_2/`;
 * - `StableDiffusion3Pipeline`: `transformer/` (SD3Transformer2DModel, renamed to the original MMDiT keys by
 *   key-maps/diffusers-sd3.ts), `vae/`, `text_encoder/` (CLIP-L) and `text_encoder_2/` (CLIP-G, both
 *   `CLIPTextModelWithProjection`), `text_encoder_3/` (T5), `tokenizer/`, `tokenizer_2/`, `tokenizer_3/`.
 * The family comes from the pipeline class, else from the transformer's class. Weights are read from safetensors
 * only: one file per component or its shards with their index, read as one file (open-checkpoint.ts
 * `openComponentWeights`), so q/k/v parts in different shards join like those of one file.
 */
import { basename, join } from 'node:path';
import type { TensorFile } from '../weights/tensor-file';
import { WeightSet } from '../weights/weight-set';
import type { ModelFamily } from './detect/family';
import { diffusersFluxWeights } from './key-maps/diffusers-flux';
import { diffusersSd3Weights } from './key-maps/diffusers-sd3';
import { diffusersVaeKeyMap, ldmVaeShape } from './key-maps/diffusers-vae';
import { t5EncoderKeyMap } from './key-maps/t5-encoder';
import { CheckpointError, readJson, type CheckpointParts, type TextEncoderWeights } from './open-checkpoint';
import type { ComponentConfigs } from './sidecar';

/** The flow family of a diffusers pipeline folder, or undefined when it is none. */
export function flowPipelineFamily(index: Record<string, unknown>): Extract<ModelFamily, 'flux' | 'sd3'> | undefined {
  const cls = typeof index._class_name === 'string' ? index._class_name : '';
  const transformer = Array.isArray(index.transformer) ? String(index.transformer[1] ?? '') : '';
  if (/^Flux/.test(cls) || transformer === 'FluxTransformer2DModel') return 'flux';
  if (/^StableDiffusion3/.test(cls) || transformer === 'SD3Transformer2DModel') return 'sd3';
  return undefined;
}

/**
 * Open the folder's components (the caller owns closing the opened files and collects their content files through
 * `open`).
 * @param open opens one component's weights (open-checkpoint.ts `openComponentWeights`), records the file for
 *        closing and its content files for the cache key.
 * @throws CheckpointError naming the missing part or an unknown pipeline class; WeightsFileError for a broken file or
 *         shard index.
 */
export async function openFlowDiffusersFolder(
  dir: string,
  index: Record<string, unknown>,
  open: (componentDir: string, stem: string) => Promise<TensorFile>,
): Promise<Omit<CheckpointParts, 'close' | 'contentFiles'>> {
  const family = flowPipelineFamily(index);
  if (!family) throw new CheckpointError(`${dir}: model_index.json names a transformer of an unknown pipeline (${String(index._class_name)}); FLUX.1 and Stable Diffusion 3.x are built`);
  const name = basename(dir);
  const has = (c: string) => Array.isArray(index[c]) && (index[c] as unknown[])[0] !== null;
  const configs: ComponentConfigs = {};
  const component = (c: string, stem: string) => open(join(dir, c), stem);

  const transformerFile = await component('transformer', 'diffusion_pytorch_model');
  const unet = family === 'flux' ? diffusersFluxWeights(WeightSet.fromFile(transformerFile, '', `${name}/transformer`)) : diffusersSd3Weights(transformerFile, `${name}/transformer`);
  configs.transformer = await readJson(join(dir, 'transformer', 'config.json'));

  let vae: WeightSet | undefined;
  if (has('vae')) {
    const f = await component('vae', 'diffusion_pytorch_model');
    vae = WeightSet.mapped(f, diffusersVaeKeyMap([...f.entries.keys()]), `${name}/vae`, ldmVaeShape);
    configs.vae = await readJson(join(dir, 'vae', 'config.json'));
  }

  const clipNames = family === 'flux' ? (['text_encoder'] as const) : (['text_encoder', 'text_encoder_2'] as const);
  const textEncoders: TextEncoderWeights[] = [];
  for (const c of clipNames) {
    if (!has(c)) continue;
    const f = await component(c, 'model');
    // transformers ≥ 5.6 may save CLIP models without the `text_model.` wrapper: add it back.
    const flat = ![...f.entries.keys()].some((k) => k.startsWith('text_model.'));
    const weights = WeightSet.mapped(f, (k) => (flat && !k.startsWith('text_projection') ? `text_model.${k}` : k), `${name}/${c}`);
    const config = await readJson(join(dir, c, 'config.json'));
    configs[c] = config;
    textEncoders.push({ prefix: '', layout: 'transformers', role: c === 'text_encoder_2' ? 'clip_g' : 'clip_l', weights, config });
  }

  const t5Name = family === 'flux' ? 'text_encoder_2' : 'text_encoder_3';
  let t5: CheckpointParts['t5'];
  if (has(t5Name)) {
    const f = await component(t5Name, 'model');
    const weights = WeightSet.mapped(f, t5EncoderKeyMap([...f.entries.keys()]), `${name}/${t5Name}`);
    const config = await readJson(join(dir, t5Name, 'config.json'));
    if (family === 'sd3') configs.text_encoder_3 = config;
    else configs.text_encoder_2 = config;
    t5 = { weights, config };
  }
  configs.scheduler = await readJson(join(dir, 'scheduler', 'scheduler_config.json'));
  const tokenizerDirs = {
    ...(has('tokenizer') ? { clip: join(dir, 'tokenizer') } : {}),
    ...(has(family === 'flux' ? 'tokenizer_2' : 'tokenizer_3') ? { t5: join(dir, family === 'flux' ? 'tokenizer_2' : 'tokenizer_3') } : {}),
  };
  return {
    kind: 'diffusers',
    path: dir,
    family,
    unet,
    vae,
    textEncoders,
    configs,
    unetOnly: !vae && textEncoders.length === 0 && !t5,
    t5,
    tokenizerDirs,
  };
}
