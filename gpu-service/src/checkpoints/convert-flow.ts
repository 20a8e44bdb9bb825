/**
 * Conversion and loading of flow-matching transformer checkpoints (FLUX.1, SD 3.x): every network of a
 * FlowModelSpec into one conversion-cache entry, then a DiffusionModel whose `flow` part the flow pipeline runs
 * (diffusion/pipelines/flow-generate.ts). Entry layout (docs/architecture.md, "Models"):
 *
 * | folder | graph | I/O |
 * |---|---|---|
 * | `text_encoder/` | CLIP-L (graphs/clip-text-encoder.ts) | `input_ids` → `hidden_states.i`, `pooler_output`, `text_embeds` |
 * | `text_encoder_2/` | CLIP-G (SD 3.x only) | same |
 * | `text_encoder_t5/` | T5 encoder (graphs/t5-encoder.ts) | `input_ids` → `last_hidden_state` |
 * | `transformer/` | FLUX.1 (graphs/flux-transformer.ts) or MMDiT (graphs/mmdit.ts) | see the builders |
 * | `vae_decoder/`, `vae_encoder/` | 16-channel AutoencoderKL (graphs/vae.ts) | as for the UNet families |
 *
 * plus `model_index.json` (`image_api.flow`: family, T5 length, guidance input), `scheduler/scheduler_config.json`
 * (FlowMatchEulerDiscreteScheduler), `vae_decoder/config.json` (scaling and shift), `tokenizer/` (CLIP BPE, pad
 * `<|endoftext|>`), `tokenizer_2/` (the same BPE, pad `!`, SD 3.x) and `tokenizer_t5/` (tokenizer.json).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildClipTextEncoder } from '../graphs/clip-text-encoder';
import { buildFluxTransformerGraph } from '../graphs/flux-transformer';
import { buildMmditGraph } from '../graphs/mmdit';
import { buildT5Encoder } from '../graphs/t5-encoder';
import { buildVaeDecoder, buildVaeEncoder } from '../graphs/vae';
import { loadFlowModel } from '../models/flow-model';
import type { SessionOptions } from '../onnx/session';
import type { ModelFamily } from './detect/family';
import { cacheKeyOf, tokenizerFiles, type CheckpointEngineOptions, type CheckpointRef, type ConvertedFacts, type LoadedCheckpoint } from './checkpoint-engine';
import type { CacheEntry, CacheEntryPlan } from './conversion-cache';
import { describeFlowModel, type FlowModelSpec } from './flow-spec';
import type { CheckpointParts } from './open-checkpoint';
import { optimizedGraphs } from './optimized-graphs';

/** Whether a family is a flow-matching transformer family (built here, not by the UNet path). */
export function isFlowFamily(family: ModelFamily): family is 'flux' | 'sd3' {
  return family === 'flux' || family === 'sd3';
}

/**
 * Networks of a flow entry never saved optimized (optimized-graphs.ts `atLoad`): onnxruntime 1.30's CPU provider
 * crashes (SIGSEGV) running a T5 encoder graph it optimized and saved with prepacked weights (measured on the
 * fixture's encoder; the original graph runs), so T5 is optimized at every load.
 */
export const FLOW_AT_LOAD_NETWORKS: readonly string[] = Object.freeze(['text_encoder_t5']);

/** What a flow entry's model_index.json says besides ConvertedFacts (`image_api.flow`). */
export interface FlowFacts {
  family: 'flux' | 'sd3';
  /** T5 tokens encoded per prompt (diffusers `max_sequence_length`). */
  t5_max_length: number;
  /** The transformer has a distilled-guidance input (FLUX.1-dev style). */
  guidance_embed: boolean;
}

/** Build every graph of a described flow checkpoint into the cache (no-op when the entry exists). */
export async function convertFlowCheckpoint(
  ref: CheckpointRef,
  parts: CheckpointParts,
  spec: FlowModelSpec,
  engine: CheckpointEngineOptions,
  onProgress?: CacheEntryPlan['onProgress'],
): Promise<CacheEntry & { sha256: string; key: string }> {
  const tokenizer = await tokenizerFiles(ref, engine, parts);
  const { key, sha256 } = await cacheKeyOf(parts, engine, tokenizer);
  const opts = { floatType: engine.floatType, attention: engine.attention };
  const facts: ConvertedFacts & { flow: FlowFacts } = {
    id: ref.id,
    sha256,
    family: spec.family,
    architecture: spec.architecture,
    prediction_type: 'flow',
    stored_dtype: spec.storedDtype,
    float_type: engine.floatType,
    capabilities: spec.capabilities,
    flow: { family: spec.family, t5_max_length: spec.t5.maxSequenceLength, guidance_embed: spec.guidanceEmbed },
  };
  const [clipL, clipG] = spec.textEncoders;
  const t = spec.transformer;
  const graphs: CacheEntryPlan['graphs'] = [
    { folder: 'text_encoder', build: () => buildClipTextEncoder(clipL.config, clipL.weights, opts) },
    ...(clipG ? [{ folder: 'text_encoder_2', build: () => buildClipTextEncoder(clipG.config, clipG.weights, opts) }] : []),
    { folder: 'text_encoder_t5', build: () => buildT5Encoder(spec.t5.config, spec.t5.weights, opts) },
    { folder: 'transformer', build: () => (t.kind === 'flux' ? buildFluxTransformerGraph(t.config, t.weights, opts) : buildMmditGraph(t.config, t.weights, opts)) },
    { folder: 'vae_decoder', build: () => buildVaeDecoder(spec.vae.config, spec.vae.weights, opts) },
  ];
  if (spec.vae.config.encoder) graphs.push({ folder: 'vae_encoder', build: () => buildVaeEncoder(spec.vae.config, spec.vae.weights, opts) });
  const clipFiles = (folder: string, pad: string, maxPositions: number) => [
    { path: `${folder}/vocab.json`, contents: tokenizer.vocab },
    { path: `${folder}/merges.txt`, contents: tokenizer.merges },
    { path: `${folder}/special_tokens_map.json`, contents: JSON.stringify({ bos_token: '<|startoftext|>', eos_token: '<|endoftext|>', unk_token: '<|endoftext|>', pad_token: pad }) },
    { path: `${folder}/tokenizer_config.json`, contents: JSON.stringify({ model_max_length: maxPositions }) },
  ];
  const t5 = tokenizer.t5!;
  return {
    ...(await engine.cache.ensure({
      key,
      graphs,
      onProgress,
      files: [
        {
          path: 'model_index.json',
          contents: JSON.stringify({ _class_name: spec.family === 'flux' ? 'FluxPipeline' : 'StableDiffusion3Pipeline', native_size: spec.nativeSize, image_api: facts }, null, 1),
        },
        { path: 'scheduler/scheduler_config.json', contents: JSON.stringify(spec.scheduler, null, 1) },
        { path: 'vae_decoder/config.json', contents: JSON.stringify({ scaling_factor: spec.vae.config.scalingFactor, shift_factor: spec.vae.config.shiftFactor, norm_num_groups: spec.vae.config.normGroups }) },
        ...clipFiles('tokenizer', clipL.padToken, clipL.config.maxPositions),
        ...(clipG ? clipFiles('tokenizer_2', clipG.padToken, clipG.config.maxPositions) : []),
        { path: 'tokenizer_t5/tokenizer.json', contents: t5.tokenizerJson },
        ...(t5.tokenizerConfig ? [{ path: 'tokenizer_t5/tokenizer_config.json', contents: t5.tokenizerConfig }] : []),
        ...(t5.specialTokensMap ? [{ path: 'tokenizer_t5/special_tokens_map.json', contents: t5.specialTokensMap }] : []),
      ],
    })),
    sha256,
    key,
  };
}

/**
 * Describe, convert (when not cached) and open a flow checkpoint whose parts are open (the caller closes them).
 * @throws the detection / conversion / session error.
 */
export async function loadFlowCheckpoint(ref: CheckpointRef, parts: CheckpointParts, engine: CheckpointEngineOptions, sessionOptions: SessionOptions): Promise<LoadedCheckpoint> {
  const spec = await describeFlowModel(parts);
  const entry = await convertFlowCheckpoint(ref, parts, spec, engine);
  const graphs = await optimizedGraphs(engine.cache, entry.key, sessionOptions, { atLoad: FLOW_AT_LOAD_NETWORKS });
  const started = performance.now();
  const model = await loadFlowModel(entry.dir, { name: ref.id, contentHash: entry.sha256, openNetwork: graphs.open });
  return {
    model,
    spec,
    converted: entry.built,
    conversionSeconds: entry.seconds,
    optimized: graphs.built,
    optimizationSeconds: graphs.seconds,
    optimizationError: graphs.error,
    sessionSeconds: (performance.now() - started) / 1000,
    cacheDir: entry.dir,
  };
}

/** The FlowFacts of a converted entry. @throws Error when the entry is not a flow model's. */
export async function readFlowFacts(dir: string): Promise<FlowFacts> {
  const index = JSON.parse(await readFile(join(dir, 'model_index.json'), 'utf8')) as { image_api?: { flow?: FlowFacts } };
  const flow = index.image_api?.flow;
  if (!flow) throw new Error(`${dir}: model_index.json has no image_api.flow (not a flow model entry)`);
  return flow;
}
