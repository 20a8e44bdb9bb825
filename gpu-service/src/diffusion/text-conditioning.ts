/**
 * Prompt → text-encoder hidden states, AUTOMATIC1111-style: weighted prompt syntax, 75-token chunks
 * (each encoded as bos + 75 + eos and concatenated along the token axis), emphasis, and prompt and
 * negative prompt padded to the same number of chunks.
 */
import type { DiffusionModel } from '../models/diffusion-model';
import { tokenizeWeightedPrompt, type PromptEmbedding } from './prompt/chunk-prompt';
import { CLIP_TEXT_INPUTS } from '../graphs/clip-text-encoder';
import { PromptSyntaxError } from './prompt/parse-attention';
import { JobInputError } from './pipelines/job-input-error';
import { layerNorm, readFinalLayerNorm, type LayerNormParams } from './final-layer-norm';

/** Each loaded model's final LayerNorm (read once, on the first clip_skip request). */
const finalNorms = new WeakMap<DiffusionModel, Promise<LayerNormParams | undefined>>();

function finalNormOf(model: DiffusionModel): Promise<LayerNormParams | undefined> {
  if (model.finalLayerNorm) return Promise.resolve(model.finalLayerNorm);
  let p = finalNorms.get(model);
  if (!p) {
    p = readFinalLayerNorm(model.textEncoder.path, model.hiddenSize);
    finalNorms.set(model, p);
  }
  return p;
}
import { applyEmphasis } from './prompt/apply-emphasis';
import { encodeSdxlPromptPair } from './sdxl/sdxl-text-conditioning';

/** Hidden states for one prompt: float32 [tokens, hiddenSize], tokens = 77 × chunks. */
export interface Conditioning {
  hidden: Float32Array;
  tokens: number;
  hiddenSize: number;
  /** SDXL: the pooled text_embeds float32 [pooledDim] (sdxl/sdxl-text-conditioning.ts). */
  pooled?: Float32Array;
}

/** Error for a clip_skip the model cannot serve (no hidden_states outputs in its text encoder export). */
export class ClipSkipUnsupportedError extends JobInputError {
  constructor(message: string) {
    super('clip_skip', message);
    this.name = 'ClipSkipUnsupportedError';
  }
}

type Chunk = { ids: number[]; weights: number[] };

/**
 * Textual-inversion embeddings for one prompt pair: what the tokenizer looks for, and the vectors the text
 * encoder reads for their placeholder ids (vocabulary size V and up, in order).
 */
export interface TextualInversionSet {
  embeddings: PromptEmbedding[];
  /** float32 [count, hiddenSize]: row k is the vector of id V + k. */
  table: Float32Array;
  count: number;
  /**
   * SDXL: one set per text encoder, in the order the encoders run (CLIP-L then bigG on the base; bigG alone on
   * the refiner), each with that encoder's own vectors (an SDXL embedding file's `clip_l` / `clip_g`); the
   * top-level `embeddings` / `table` are then unused and `count` is the vectors per encoder.
   */
  perEncoder?: TextualInversionSet[];
}

/**
 * Assign placeholder ids to embeddings' vectors for the model's (first) text encoder.
 * @param embeddings name (the prompt word) and vectors float32 [n, H] of each embedding.
 */
export function textualInversionSet(model: DiffusionModel, embeddings: ReadonlyArray<{ name: string; vectors: Float32Array; count: number }>): TextualInversionSet {
  return textualInversionTable(model.tokenizer, model.hiddenSize, embeddings);
}

/**
 * Assign placeholder ids (the tokenizer's vocabulary size V and up, in order) to embeddings' vectors for one
 * text encoder of width `H`.
 * @param embeddings name (the prompt word) and vectors float32 [n, H] of each embedding.
 */
export function textualInversionTable(tokenizer: DiffusionModel['tokenizer'], H: number, embeddings: ReadonlyArray<{ name: string; vectors: Float32Array; count: number }>): TextualInversionSet {
  const V = tokenizer.vocabSize;
  const total = embeddings.reduce((n, e) => n + e.count, 0);
  const table = new Float32Array(total * H);
  const out: PromptEmbedding[] = [];
  let next = 0;
  for (const e of embeddings) {
    table.set(e.vectors.subarray(0, e.count * H), next * H);
    out.push({ name: e.name, nameIds: tokenizer.encode(e.name), vectorIds: Array.from({ length: e.count }, (_, i) => V + next + i) });
    next += e.count;
  }
  return { embeddings: out, table, count: total };
}

async function encodeChunks(model: DiffusionModel, chunks: Chunk[], clipSkip: number | undefined, ti?: TextualInversionSet): Promise<Conditioning> {
  const enc = model.textEncoder;
  const idsInput = enc.findInput('input_ids') ?? enc.inputs[0];
  const len = chunks[0].ids.length;
  let outputName = (enc.findOutput('last_hidden_state') ?? enc.outputs[0]).name;
  if (clipSkip && clipSkip > 1) {
    // Diffusers convention: hidden_states.0 = embeddings, hidden_states.L = last layer; clip_skip k
    // takes hidden_states.(L − k + 1).
    const layers = enc.outputs.map((o) => /^hidden_states\.(\d+)$/.exec(o.name)).filter((m) => m).map((m) => Number(m![1]));
    if (layers.length === 0) {
      throw new ClipSkipUnsupportedError(`clip_skip ${clipSkip} needs a text encoder export with hidden_states outputs; model ${model.name} has none`);
    }
    const last = Math.max(...layers);
    const layer = last - clipSkip + 1;
    if (layer < 1) throw new ClipSkipUnsupportedError(`clip_skip must be at most ${last} for model ${model.name}`);
    outputName = `hidden_states.${layer}`;
  }
  // clip_skip > 1: the earlier hidden state goes through the text model's final LayerNorm (diffusers,
  // A1111) when the export carries its weights.
  const norm = outputName.startsWith('hidden_states.') ? await finalNormOf(model) : undefined;
  const fixedBatch = idsInput.shape[0] === 1;
  const H = model.hiddenSize;
  const hidden = new Float32Array(chunks.length * len * H);
  const groups = fixedBatch ? chunks.map((c) => [c]) : [chunks];
  let offset = 0;
  for (const group of groups) {
    const ids = group.flatMap((c) => c.ids);
    const feeds: Record<string, { data: ArrayLike<number>; dims: number[] }> = { [idsInput.name]: { data: ids, dims: [group.length, len] } };
    // Engine-built text encoders read textual-inversion vectors from an extra table (empty without embeddings).
    const takesExtra = !!enc.findInput(CLIP_TEXT_INPUTS.extraTokenEmbeddings);
    if (ti && ti.count > 0 && !takesExtra) {
      throw new JobInputError('embeddings', `model ${model.name}'s text encoder takes no textual-inversion vectors (an ONNX export; embeddings need a checkpoint the engine builds)`);
    }
    if (takesExtra) feeds[CLIP_TEXT_INPUTS.extraTokenEmbeddings] = ti && ti.count > 0 ? { data: ti.table, dims: [ti.count, model.hiddenSize] } : { data: new Float32Array(0), dims: [0, model.hiddenSize] };
    const out = await enc.run(feeds, [outputName]);
    const data = out[outputName].data;
    for (let k = 0; k < group.length; k++) {
      const raw = data.subarray(k * len * H, (k + 1) * len * H);
      const chunkHidden = norm ? layerNorm(raw, H, norm) : raw;
      hidden.set(applyEmphasis(chunkHidden, group[k].weights, len, H), offset);
      offset += len * H;
    }
  }
  return { hidden, tokens: chunks.length * len, hiddenSize: H };
}

/**
 * Encode prompt and negative prompt with the model's own tokenizer and text encoder.
 * @returns cond and uncond hidden states with the same token count (77 × max(chunks)).
 * @throws ClipSkipUnsupportedError when clip_skip > 1 and the export has no hidden states; JobInputError
 *         naming prompt / negative_prompt for weights that cannot be parsed.
 */
export async function encodePromptPair(
  model: DiffusionModel,
  prompt: string,
  negativePrompt: string,
  clipSkip?: number,
  textualInversion: TextualInversionSet | undefined = model.textualInversion,
): Promise<{ cond: Conditioning; uncond: Conditioning }> {
  // SDXL: two encoders (or the refiner's one), penultimate layer, pooled text_embeds; an empty negative prompt
  // is "none given" (zeros on the base, as diffusers' force_zeros_for_empty_prompt).
  if (model.sdxl) return encodeSdxlPromptPair(model, prompt, negativePrompt === '' ? null : negativePrompt, clipSkip, textualInversion);
  const tokenize = (text: string, param: string) => {
    try {
      return tokenizeWeightedPrompt(model.tokenizer, text, { embeddings: textualInversion?.embeddings }).chunks;
    } catch (err) {
      if (err instanceof PromptSyntaxError) throw new JobInputError(param, `${param}: ${err.message}`);
      throw err;
    }
  };
  const pos = tokenize(prompt, 'prompt');
  const neg = tokenize(negativePrompt, 'negative_prompt');
  const empty = tokenizeWeightedPrompt(model.tokenizer, '').chunks[0];
  while (pos.length < neg.length) pos.push(empty);
  while (neg.length < pos.length) neg.push(empty);
  const [cond, uncond] = await Promise.all([encodeChunks(model, pos, clipSkip, textualInversion), encodeChunks(model, neg, clipSkip, textualInversion)]);
  return { cond, uncond };
}
