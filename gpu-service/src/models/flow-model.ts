/**
 * A converted flow-matching transformer model (checkpoints/convert-flow.ts entry layout) opened as a
 * DiffusionModel with its `flow` components: the transformer, CLIP-L (+ CLIP-G for SD 3.x) and T5 with their
 * tokenizers, the FlowMatchEulerDiscreteScheduler config and the family's conventions.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FlowSchedulerConfig } from '../checkpoints/flow-spec';
import { readFlowFacts } from '../checkpoints/convert-flow';
import { flowModelSchedule } from '../diffusion/schedules/flow-schedule';
import { loadClipTokenizer, type ClipTokenizer } from '../diffusion/tokenizer/clip-tokenizer';
import { loadT5Tokenizer, type T5Tokenizer } from '../diffusion/tokenizer/t5-tokenizer';
import { OnnxModel } from '../onnx/session';
import { readModelInfo, type DiffusionModel, type KnownModelFacts } from './diffusion-model';

/** The parts only flow models have. */
export interface FlowComponents {
  family: 'flux' | 'sd3';
  transformer: OnnxModel;
  /** SD 3.x's second CLIP (OpenCLIP bigG, pad `!`). */
  clipG?: { model: OnnxModel; tokenizer: ClipTokenizer };
  t5: { model: OnnxModel; tokenizer: T5Tokenizer; maxSequenceLength: number };
  scheduler: FlowSchedulerConfig;
  /** The transformer takes `guidance` (FLUX.1-dev style distilled guidance). */
  guidanceEmbed: boolean;
  /** Layers of CLIP-L (and CLIP-G): SD 3.x reads hidden_states.(layers − 1). */
  clipLayers: number[];
}

function layersOf(model: OnnxModel): number {
  let n = 0;
  for (const o of model.outputs) {
    const m = /^hidden_states\.(\d+)$/.exec(o.name);
    if (m) n = Math.max(n, Number(m[1]));
  }
  return n;
}

/**
 * Open every session of a flow model entry.
 * @param known the id, content hash and (optimized-graph) network opener, as for UNet entries.
 * @throws Error naming the entry and the missing or broken part.
 */
export async function loadFlowModel(dir: string, known: KnownModelFacts & { openNetwork: (network: string) => Promise<OnnxModel> }): Promise<DiffusionModel> {
  const info = await readModelInfo(dir);
  if (known.name) info.name = known.name;
  const facts = await readFlowFacts(dir);
  const scheduler = JSON.parse(await readFile(join(dir, 'scheduler/scheduler_config.json'), 'utf8')) as FlowSchedulerConfig;
  const tokenizer = await loadClipTokenizer(join(dir, 'tokenizer'));
  const t5Tokenizer = await loadT5Tokenizer(join(dir, 'tokenizer_t5'));
  const open = known.openNetwork;
  const sessions: OnnxModel[] = [];
  const track = async (network: string) => {
    const m = await open(network);
    sessions.push(m);
    return m;
  };
  try {
    const textEncoder = await track('text_encoder');
    const clipG = facts.family === 'sd3' ? { model: await track('text_encoder_2'), tokenizer: await loadClipTokenizer(join(dir, 'tokenizer_2')) } : undefined;
    const t5 = await track('text_encoder_t5');
    const transformer = await track('transformer');
    const vaeDecoder = await track('vae_decoder');
    const vaeEncoder = info.hasVaeEncoder ? await track('vae_encoder') : undefined;
    const latent = vaeDecoder.findInput('latent_sample') ?? vaeDecoder.inputs[0];
    const latentChannels = typeof latent?.shape[1] === 'number' ? latent.shape[1] : 16;
    const hidden = textEncoder.findOutput('last_hidden_state');
    return {
      ...info,
      schedule: flowModelSchedule(scheduler, info.nativeSize[0], info.nativeSize[1]),
      tokenizer,
      textEncoder,
      unet: transformer,
      vaeDecoder,
      vaeEncoder,
      unetInChannels: latentChannels,
      latentChannels,
      hiddenSize: typeof hidden?.shape[2] === 'number' ? hidden.shape[2] : 0,
      contentHash: known.contentHash ?? '',
      builtByEngine: true,
      flow: {
        family: facts.family,
        transformer,
        clipG,
        t5: { model: t5, tokenizer: t5Tokenizer, maxSequenceLength: facts.t5_max_length },
        scheduler,
        guidanceEmbed: facts.guidance_embed,
        clipLayers: [layersOf(textEncoder), ...(clipG ? [layersOf(clipG.model)] : [])],
      },
      async release() {
        await Promise.all(sessions.map((s) => s.release()));
      },
    };
  } catch (err) {
    await Promise.all(sessions.map((s) => s.release()));
    throw err;
  }
}
