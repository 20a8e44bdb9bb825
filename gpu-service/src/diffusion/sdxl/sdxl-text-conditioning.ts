/**
 * SDXL prompt conditioning (diffusers `StableDiffusionXLPipeline.encode_prompt` /
 * `StableDiffusionXLImg2ImgPipeline.encode_prompt`, with AUTOMATIC1111's weighted syntax and 75-token chunks):
 *
 *   base:    encoder_hidden_states = concat(CLIP-L hidden_states[-2], bigG hidden_states[-2]) on the feature axis
 *            → [77·chunks, 768 + 1280];  text_embeds = bigG `text_embeds` (projected pooled output) → [1280]
 *   refiner: encoder_hidden_states = bigG hidden_states[-2] → [77·chunks, 1280];  text_embeds as above
 *
 * - Each encoder tokenizes with its own tokenizer (same BPE; CLIP-L pads with `<|endoftext|>`, bigG with `!` =
 *   id 0) and gets the emphasis of the prompt weights on its own output (A1111 wraps each SDXL embedder
 *   separately), chunk by chunk; the chunks are concatenated along the token axis.
 * - `text_embeds` is the first chunk's (A1111; diffusers has only one chunk).
 * - Layer: `hidden_states.(L − clip_skip + 1)` without the final LayerNorm, clip_skip default 2 (SDXL's
 *   penultimate layer); clip_skip 1 is `last_hidden_state`, which has the final LayerNorm (ComfyUI's SDXL
 *   CLIPSetLastLayer −1).
 * - An absent negative prompt (null) on a model with `forceZerosForEmptyPrompt` (the base) gives all-zero
 *   negative hidden states and text_embeds; otherwise "" is encoded (the refiner).
 */
import type { DiffusionModel, SdxlConditioning } from '../../models/diffusion-model';
import type { OnnxModel } from '../../onnx/session';
import { CLIP_TEXT_INPUTS, CLIP_TEXT_OUTPUTS } from '../../graphs/clip-text-encoder';
import type { ClipTokenizer } from '../tokenizer/clip-tokenizer';
import { tokenizeWeightedPrompt, type PromptChunk } from '../prompt/chunk-prompt';
import { PromptSyntaxError } from '../prompt/parse-attention';
import { applyEmphasis } from '../prompt/apply-emphasis';
import { JobInputError } from '../pipelines/job-input-error';
import type { TextualInversionSet } from '../text-conditioning';

/** The default clip_skip of SDXL: the penultimate layer of both encoders. */
export const SDXL_DEFAULT_CLIP_SKIP = 2;

/** One prompt's SDXL conditioning. */
export interface SdxlPromptConditioning {
  /** float32 [tokens, hiddenSize]: the encoders' hidden states concatenated on the feature axis. */
  hidden: Float32Array;
  tokens: number;
  hiddenSize: number;
  /** float32 [pooledDim]: the bigG encoder's text_embeds of the first chunk. */
  pooled: Float32Array;
}

interface Encoder {
  session: OnnxModel;
  tokenizer: ClipTokenizer;
  width: number;
  /** Whether this encoder gives text_embeds (the bigG one). */
  pooled: boolean;
}

function encodersOf(model: DiffusionModel, sdxl: SdxlConditioning): Encoder[] {
  if (sdxl.kind === 'refiner') return [{ session: model.textEncoder, tokenizer: model.tokenizer, width: sdxl.encoderWidths[0], pooled: true }];
  if (!sdxl.textEncoder2 || !sdxl.tokenizer2) throw new Error(`${model.name}: an SDXL base needs text_encoder_2 and tokenizer_2`);
  return [
    { session: model.textEncoder, tokenizer: model.tokenizer, width: sdxl.encoderWidths[0], pooled: false },
    { session: sdxl.textEncoder2, tokenizer: sdxl.tokenizer2, width: sdxl.encoderWidths[1], pooled: true },
  ];
}

/** The hidden-state output clip_skip selects. @throws JobInputError (clip_skip) when it is beyond the layers. */
function layerOutput(model: DiffusionModel, enc: OnnxModel, clipSkip: number): string {
  if (clipSkip === 1) return CLIP_TEXT_OUTPUTS.lastHiddenState;
  const layers = enc.outputs.map((o) => /^hidden_states\.(\d+)$/.exec(o.name)).filter((m) => m).map((m) => Number(m![1]));
  const last = Math.max(0, ...layers);
  const layer = last - clipSkip + 1;
  if (layer < 1) throw new JobInputError('clip_skip', `clip_skip must be at most ${last} for model ${model.name}`);
  return CLIP_TEXT_OUTPUTS.hiddenState(layer);
}

/** Run one encoder over chunks; returns emphasised hidden states [chunks·77, width] and the first chunk's text_embeds. */
async function runEncoder(model: DiffusionModel, e: Encoder, chunks: PromptChunk[], clipSkip: number, ti?: TextualInversionSet): Promise<{ hidden: Float32Array; pooled?: Float32Array }> {
  const len = chunks[0].ids.length;
  const output = layerOutput(model, e.session, clipSkip);
  const wanted = e.pooled ? [output, CLIP_TEXT_OUTPUTS.textEmbeds] : [output];
  const feeds: Record<string, { data: ArrayLike<number>; dims: number[] }> = { input_ids: { data: chunks.flatMap((c) => c.ids), dims: [chunks.length, len] } };
  // Engine-built encoders read textual-inversion vectors (ids V and up) from an extra table, empty without embeddings.
  const takesExtra = !!e.session.findInput(CLIP_TEXT_INPUTS.extraTokenEmbeddings);
  if (ti && ti.count > 0 && !takesExtra) throw new JobInputError('embeddings', `model ${model.name}'s text encoders take no textual-inversion vectors (an ONNX export; embeddings need a checkpoint the engine builds)`);
  if (takesExtra) feeds[CLIP_TEXT_INPUTS.extraTokenEmbeddings] = ti && ti.count > 0 ? { data: ti.table, dims: [ti.count, e.width] } : { data: new Float32Array(0), dims: [0, e.width] };
  const out = await e.session.run(feeds, wanted);
  const raw = out[output].data;
  const hidden = new Float32Array(chunks.length * len * e.width);
  for (let k = 0; k < chunks.length; k++) {
    hidden.set(applyEmphasis(raw.subarray(k * len * e.width, (k + 1) * len * e.width), chunks[k].weights, len, e.width), k * len * e.width);
  }
  return e.pooled ? { hidden, pooled: Float32Array.from(out[CLIP_TEXT_OUTPUTS.textEmbeds].data.subarray(0, model.sdxl!.pooledDim)) } : { hidden };
}

/** Interleave per-encoder [T, w_e] rows into [T, Σ w_e] (torch.concat(dim=-1)). */
function concatFeatures(parts: Float32Array[], widths: number[], tokens: number): Float32Array {
  const total = widths.reduce((a, b) => a + b, 0);
  const out = new Float32Array(tokens * total);
  for (let t = 0; t < tokens; t++) {
    let o = t * total;
    parts.forEach((p, i) => {
      out.set(p.subarray(t * widths[i], (t + 1) * widths[i]), o);
      o += widths[i];
    });
  }
  return out;
}

/**
 * Encode an SDXL prompt pair.
 * @param negativePrompt null = none given (zeros on the base, see the module docstring).
 * @param clipSkip default 2 (penultimate layer).
 * @returns cond and uncond with the same token count (77 × max(chunks)) and their pooled text_embeds.
 * @param textualInversion SDXL embeddings: `perEncoder` holds each encoder's vectors (A1111 / ComfyUI SDXL files
 *        carry `clip_l` and `clip_g`); each encoder tokenizes with its own set and reads its own table.
 * @throws JobInputError naming prompt / negative_prompt for weights that cannot be parsed, clip_skip beyond the
 *         encoders' layers, or embeddings built for a one-encoder model.
 */
export async function encodeSdxlPromptPair(
  model: DiffusionModel,
  prompt: string,
  negativePrompt: string | null,
  clipSkip: number = SDXL_DEFAULT_CLIP_SKIP,
  textualInversion?: TextualInversionSet,
): Promise<{ cond: SdxlPromptConditioning; uncond: SdxlPromptConditioning }> {
  const sdxl = model.sdxl;
  if (!sdxl) throw new Error(`${model.name} is not an SDXL model`);
  const encoders = encodersOf(model, sdxl);
  const tiOf = (i: number): TextualInversionSet | undefined => {
    if (!textualInversion || textualInversion.count === 0) return undefined;
    const set = textualInversion.perEncoder?.[i];
    if (!set || textualInversion.perEncoder!.length !== encoders.length) throw new JobInputError('embeddings', `model ${model.name} is SDXL: its embeddings need vectors for each of its ${encoders.length} text encoders`);
    return set;
  };
  const zeroNegative = negativePrompt === null && sdxl.forceZerosForEmptyPrompt;
  const tokenize = (tokenizer: ClipTokenizer, text: string, param: string, ti?: TextualInversionSet) => {
    try {
      return tokenizeWeightedPrompt(tokenizer, text, { embeddings: ti?.embeddings }).chunks;
    } catch (err) {
      if (err instanceof PromptSyntaxError) throw new JobInputError(param, `${param}: ${err.message}`);
      throw err;
    }
  };
  const widths = encoders.map((e) => e.width);
  const encodePair = async (e: Encoder, i: number) => {
    const ti = tiOf(i);
    const pos = tokenize(e.tokenizer, prompt, 'prompt', ti);
    const neg = tokenize(e.tokenizer, negativePrompt ?? '', 'negative_prompt', ti);
    const empty = tokenizeWeightedPrompt(e.tokenizer, '').chunks[0];
    if (zeroNegative) while (neg.length < pos.length) neg.push(empty);
    while (pos.length < neg.length) pos.push(empty);
    while (neg.length < pos.length) neg.push(empty);
    const [c, u] = await Promise.all([runEncoder(model, e, pos, clipSkip, ti), zeroNegative ? Promise.resolve(undefined) : runEncoder(model, e, neg, clipSkip, ti)]);
    return { c, u, chunks: pos.length };
  };
  const results = await Promise.all(encoders.map(encodePair));
  const tokens = results[0].chunks * encoders[0].tokenizer.modelMaxLength;
  if (results.some((r) => r.chunks !== results[0].chunks)) throw new Error(`${model.name}: the SDXL tokenizers split the prompt into different chunk counts`);
  const hiddenSize = widths.reduce((a, b) => a + b, 0);
  const pooledOf = (r: { pooled?: Float32Array } | undefined) => r?.pooled;
  const bigG = results[results.length - 1];
  const cond: SdxlPromptConditioning = { hidden: concatFeatures(results.map((r) => r.c.hidden), widths, tokens), tokens, hiddenSize, pooled: pooledOf(bigG.c)! };
  const uncond: SdxlPromptConditioning = zeroNegative
    ? { hidden: new Float32Array(tokens * hiddenSize), tokens, hiddenSize, pooled: new Float32Array(sdxl.pooledDim) }
    : { hidden: concatFeatures(results.map((r) => r.u!.hidden), widths, tokens), tokens, hiddenSize, pooled: pooledOf(bigG.u)! };
  return { cond, uncond };
}
