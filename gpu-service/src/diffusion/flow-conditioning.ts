/**
 * Text conditioning of flow-matching transformer models, as diffusers encodes it (no prompt-weighting syntax,
 * no 75-token chunks: each encoder truncates):
 * - FLUX.1 (FluxPipeline.encode_prompt): `encoder_hidden_states` = T5 last_hidden_state [1, L, D_t5] (ids: pieces,
 *   `</s>`, `<pad>` to L = max_sequence_length, no mask); `pooled` = CLIP-L pooler_output [1, H_l] (77 ids, eos pad).
 * - SD 3.x (StableDiffusion3Pipeline.encode_prompt): CLIP-L and CLIP-G `hidden_states[-2]` [1, 77, H_l], [1, 77, H_g]
 *   joined on the feature axis and zero-padded to D_t5, then T5 appended on the sequence axis → [1, 77 + L, D_t5];
 *   `pooled` = concat(CLIP-L text_embeds, CLIP-G text_embeds) [1, P_l + P_g]. CLIP-G pads with `!` (id 0).
 * Float32 throughout (the graphs' outputs are converted to float32 by the session).
 */
import type { DiffusionModel } from '../models/diffusion-model';
import type { FlowComponents } from '../models/flow-model';
import type { OnnxModel } from '../onnx/session';
import type { ClipTokenizer } from './tokenizer/clip-tokenizer';
import { CLIP_TEXT_INPUTS } from '../graphs/clip-text-encoder';

/** One prompt's conditioning. */
export interface FlowConditioning {
  /** float32 [1, tokens, width]. */
  hidden: Float32Array;
  tokens: number;
  width: number;
  /** float32 [1, pooledWidth]. */
  pooled: Float32Array;
}

async function runClip(model: OnnxModel, tokenizer: ClipTokenizer, prompt: string, outputs: string[]): Promise<Record<string, { data: Float32Array; dims: readonly number[] }>> {
  const ids = tokenizer.encodeForModel(prompt, 77);
  const feeds: Parameters<OnnxModel['run']>[0] = { input_ids: { data: BigInt64Array.from(ids.map(BigInt)), dims: [1, ids.length] } };
  // The engine's CLIP graphs take textual-inversion vectors; flow models use none (an empty [0, H] table).
  const extra = model.findInput(CLIP_TEXT_INPUTS.extraTokenEmbeddings);
  if (extra) feeds[extra.name] = { data: new Float32Array(0), dims: [0, Number(extra.shape[1])] };
  return model.run(feeds, outputs);
}

async function runT5(flow: FlowComponents, prompt: string): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const ids = flow.t5.tokenizer.encodeForModel(prompt, flow.t5.maxSequenceLength);
  const out = await flow.t5.model.run({ input_ids: { data: BigInt64Array.from(ids.map(BigInt)), dims: [1, ids.length] } }, ['last_hidden_state']);
  return out.last_hidden_state;
}

/**
 * Encode one prompt for a flow model.
 * @throws Error when the model is not a flow model; the session's error otherwise.
 */
export async function encodeFlowPrompt(model: DiffusionModel, prompt: string): Promise<FlowConditioning> {
  const flow = model.flow;
  if (!flow) throw new Error(`${model.name} is not a flow-matching model`);
  const t5 = await runT5(flow, prompt);
  const [, L, D] = t5.dims;
  if (flow.family === 'flux') {
    const clip = await runClip(model.textEncoder, model.tokenizer, prompt, ['pooler_output']);
    return { hidden: t5.data, tokens: L, width: D, pooled: clip.pooler_output.data };
  }
  const encoders = [
    { model: model.textEncoder, tokenizer: model.tokenizer, layers: flow.clipLayers[0] },
    { model: flow.clipG!.model, tokenizer: flow.clipG!.tokenizer, layers: flow.clipLayers[1] },
  ];
  const outs = [];
  for (const e of encoders) {
    const name = `hidden_states.${e.layers - 1}`;
    const o = await runClip(e.model, e.tokenizer, prompt, [name, 'text_embeds']);
    outs.push({ hidden: o[name], embeds: o.text_embeds.data });
  }
  const T = 77;
  const widths = outs.map((o) => o.hidden.dims[2]);
  const clipWidth = widths[0] + widths[1];
  if (clipWidth > D) throw new Error(`${model.name}: CLIP widths ${widths.join(' + ')} exceed the T5 width ${D}`);
  const hidden = new Float32Array((T + L) * D);
  for (let t = 0; t < T; t++) {
    hidden.set(outs[0].hidden.data.subarray(t * widths[0], (t + 1) * widths[0]), t * D);
    hidden.set(outs[1].hidden.data.subarray(t * widths[1], (t + 1) * widths[1]), t * D + widths[0]);
  }
  hidden.set(t5.data, T * D);
  const pooled = new Float32Array(outs[0].embeds.length + outs[1].embeds.length);
  pooled.set(outs[0].embeds, 0);
  pooled.set(outs[1].embeds, outs[0].embeds.length);
  return { hidden, tokens: T + L, width: D, pooled };
}
