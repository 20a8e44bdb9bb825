/**
 * Calls a UNet export with k-diffusion inputs: latents in VE scaling and a noise level sigma are turned
 * into the export's own inputs (sample = x·c_in, timestep t(σ) as float or rounded integer per the
 * session metadata, encoder_hidden_states), one batched run per call.
 */
import type { DiffusionModel } from '../models/diffusion-model';
import { sigmaToTimestep } from './schedules';

/** One batched UNet evaluation. */
export interface UnetCall {
  /** UNet input sample, float32 [N, C_in, h, w] (already multiplied by c_in; extra channels included). */
  sample: Float32Array;
  batch: number;
  sigma: number;
  /** float32 [N, T, H]. */
  encoderHiddenStates: Float32Array;
  tokens: number;
  /** SDXL: pooled text embeddings float32 [N, P] and time ids float32 [N, n] (UNets with `text_embeds` / `time_ids` inputs). */
  added?: { textEmbeds: Float32Array; timeIds: Float32Array };
}

/** Runs the model's UNet; returns its raw output (ε or v), float32 [N, 4, h, w]. */
export async function runUnet(model: DiffusionModel, call: UnetCall, height: number, width: number): Promise<Float32Array> {
  const unet = model.unet;
  const sampleIn = unet.findInput('sample') ?? unet.inputs[0];
  const tIn = unet.findInput('timestep', 'timesteps', 't');
  const ehsIn = unet.findInput('encoder_hidden_states', 'context');
  if (!tIn || !ehsIn) throw new Error(`${model.name}: UNet export lacks a timestep or encoder_hidden_states input`);
  const tFloat = sigmaToTimestep(model.schedule, call.sigma);
  // Integer timestep inputs take the rounded timestep; float inputs the fractional one (docs/samplers.md §1.2).
  const t = tIn.type.startsWith('int') ? Math.round(tFloat) : tFloat;
  const tCount = tIn.shape.length === 0 ? 0 : tIn.shape[0] === 1 ? 1 : call.batch;
  const feeds = {
    [sampleIn.name]: { data: call.sample, dims: [call.batch, model.unetInChannels, height, width] },
    [tIn.name]: { data: new Array(Math.max(tCount, 1)).fill(t), dims: tCount === 0 ? [] : [tCount] },
    [ehsIn.name]: { data: call.encoderHiddenStates, dims: [call.batch, call.tokens, model.hiddenSize] },
  };
  const textIn = unet.findInput('text_embeds');
  const idsIn = unet.findInput('time_ids');
  if (textIn && idsIn) {
    if (!call.added || !model.sdxl) throw new Error(`${model.name}: its UNet takes text_embeds and time_ids (SDXL), the call gives none`);
    feeds[textIn.name] = { data: call.added.textEmbeds, dims: [call.batch, model.sdxl.pooledDim] };
    feeds[idsIn.name] = { data: call.added.timeIds, dims: [call.batch, model.sdxl.timeIdCount] };
  }
  const outName = (unet.findOutput('out_sample') ?? unet.outputs[0]).name;
  const out = await unet.run(feeds, [outName]);
  return out[outName].data;
}
