/**
 * AUTOMATIC1111's long-prompt chunking (stable-diffusion-webui, modules/sd_hijack_clip.py,
 * `FrozenCLIPEmbedderWithCustomWordsBase.tokenize_line` and `process_tokens`), reproduced exactly:
 *
 * - the prompt is parsed for emphasis (parsePromptAttention) and each piece tokenized on its own;
 * - tokens fill chunks of 75 (the text encoder's length − 2); when a chunk is full and the next token is
 *   not a comma, and a comma was seen within the last 20 tokens of the chunk (`comma_padding_backtrack`,
 *   default 20), the tokens after that comma move to the next chunk;
 * - a BREAK marker closes the current chunk (even an empty one);
 * - each chunk becomes bos + 75 tokens (padded with eos) + eos, with weight 1.0 at bos, eos and padding;
 *   when the tokenizer pads with something other than eos (SD 2.x), everything after the chunk's first eos
 *   becomes pad;
 * - an empty prompt is one chunk of [bos, eos, pad…];
 * - textual-inversion embeddings (`embedding_db.find_embedding_at_position`): where the tokens of an embedding's
 *   name appear (longest name first), its n vectors take n positions, kept within one chunk (a chunk that cannot
 *   hold them all is closed first), with the weight of the text around them; their ids are the embedding's
 *   placeholder ids (the text encoder's vocabulary size and up, which its graph reads from the extra table).
 */
import type { ClipTokenizer } from '../tokenizer/clip-tokenizer';
import { parsePromptAttention } from './parse-attention';

/** One text-encoder call's worth of prompt: `ids` and `weights` both of the encoder's length (77). */
export interface PromptChunk {
  ids: number[];
  weights: number[];
}

/** A prompt split into chunks, and how many prompt tokens it holds (A1111's `token_count`). */
export interface WeightedPrompt {
  chunks: PromptChunk[];
  tokenCount: number;
}

/** A textual-inversion embedding as the tokenizer sees it. */
export interface PromptEmbedding {
  /**
   * The name users write in prompts: the file's stem (A1111), matched on tokens; or a diffusers token such as
   * `<cat-toy>`, matched literally in the text wherever it occurs (transformers' added-token rule, so
   * `<cat-toy>,` still matches).
   */
  name: string;
  /** The tokens of `name` (how it appears in a tokenized prompt). */
  nameIds: readonly number[];
  /** One placeholder id per vector (≥ the text encoder's vocabulary size). */
  vectorIds: readonly number[];
}

/** Options of tokenizeWeightedPrompt. */
export interface ChunkPromptOptions {
  /** A1111 `comma_padding_backtrack`: how far back (in tokens) a comma may be to move the chunk's tail; 0 = off. */
  commaPaddingBacktrack?: number;
  /** Textual-inversion embeddings a prompt may name. */
  embeddings?: readonly PromptEmbedding[];
}

/** A1111's default `comma_padding_backtrack`. */
export const COMMA_PADDING_BACKTRACK = 20;

/** The vocabulary entry of a word-final comma, which A1111 looks up as "," + "</w>". */
const COMMA_TOKEN = ',</w>';

/**
 * Replace everything after the first eos with pad (A1111 `process_tokens` for models whose pad ≠ eos).
 */
function applyPadding(ids: number[], eos: number, pad: number): number[] {
  if (eos === pad) return ids;
  const first = ids.indexOf(eos);
  return first === -1 ? ids : ids.map((id, i) => (i > first ? pad : id));
}

/**
 * Tokenize a prompt in AUTOMATIC1111's weighted syntax into text-encoder chunks.
 * @param tokenizer the model's tokenizer; chunk length = tokenizer.modelMaxLength (77) − 2
 * @param text prompt (or negative prompt); may be empty
 * @returns at least one chunk; every chunk has modelMaxLength ids and weights
 * @throws PromptSyntaxError for an unparsable "(text:weight)" weight; Error for a tokenizer without unk
 *   meeting an unknown symbol
 * @see https://github.com/AUTOMATIC1111/stable-diffusion-webui/blob/master/modules/sd_hijack_clip.py
 */
export function tokenizeWeightedPrompt(
  tokenizer: ClipTokenizer,
  text: string,
  options: ChunkPromptOptions = {},
): WeightedPrompt {
  const backtrack = options.commaPaddingBacktrack ?? COMMA_PADDING_BACKTRACK;
  const chunkLength = tokenizer.modelMaxLength - 2;
  const { bosTokenId: bos, eosTokenId: eos, padTokenId: pad } = tokenizer;
  const commaToken = tokenizer.tokenToId(COMMA_TOKEN);
  const parsed = parsePromptAttention(text);

  const chunks: PromptChunk[] = [];
  let tokens: number[] = [];
  let weights: number[] = [];
  let tokenCount = 0;
  let lastComma = -1;

  const nextChunk = (isLast = false) => {
    tokenCount += isLast ? tokens.length : chunkLength;
    const toAdd = chunkLength - tokens.length;
    if (toAdd > 0) {
      tokens.push(...new Array<number>(toAdd).fill(eos));
      weights.push(...new Array<number>(toAdd).fill(1.0));
    }
    chunks.push({ ids: applyPadding([bos, ...tokens, eos], eos, pad), weights: [1.0, ...weights, 1.0] });
    lastComma = -1;
    tokens = [];
    weights = [];
  };

  // Embeddings by their first name token, longest name first (A1111 EmbeddingDatabase.ids_lookup).
  const byFirstToken = new Map<number, PromptEmbedding[]>();
  for (const e of options.embeddings ?? []) {
    if (e.nameIds.length === 0) continue;
    const list = byFirstToken.get(e.nameIds[0]) ?? [];
    list.push(e);
    list.sort((a, b) => b.nameIds.length - a.nameIds.length);
    byFirstToken.set(e.nameIds[0], list);
  }
  const embeddingAt = (ids: ReadonlyArray<number | PromptEmbedding>, at: number): PromptEmbedding | undefined => {
    const first = ids[at];
    if (typeof first !== 'number') return first;
    return byFirstToken.get(first)?.find((e) => e.nameIds.every((id, i) => ids[at + i] === id));
  };
  const literal = (options.embeddings ?? []).filter((e) => /^<.+>$/.test(e.name));
  /** A piece's tokens, with literal embedding names (diffusers tokens) split out as the embedding itself. */
  const encodePiece = (text: string): Array<number | PromptEmbedding> => {
    const hit = literal.map((e) => ({ e, at: text.indexOf(e.name) })).filter((h) => h.at >= 0).sort((a, b) => a.at - b.at || b.e.name.length - a.e.name.length)[0];
    if (!hit) return tokenizer.encode(text);
    return [...tokenizer.encode(text.slice(0, hit.at)), hit.e, ...encodePiece(text.slice(hit.at + hit.e.name.length))];
  };

  for (const { text: pieceText, weight } of parsed) {
    if (pieceText === 'BREAK' && weight === -1) {
      nextChunk();
      continue;
    }
    const pieceTokens = encodePiece(pieceText);
    for (let position = 0; position < pieceTokens.length; position++) {
      const token = pieceTokens[position];
      if (token === commaToken) {
        lastComma = tokens.length;
      } else if (
        backtrack !== 0 &&
        tokens.length === chunkLength &&
        lastComma !== -1 &&
        tokens.length - lastComma <= backtrack
      ) {
        // Move the words after the last comma into the next chunk, so a phrase is not cut in two.
        const breakLocation = lastComma + 1;
        const relocTokens = tokens.slice(breakLocation);
        const relocWeights = weights.slice(breakLocation);
        tokens = tokens.slice(0, breakLocation);
        weights = weights.slice(0, breakLocation);
        nextChunk();
        tokens = relocTokens;
        weights = relocWeights;
      }
      if (tokens.length === chunkLength) nextChunk();
      const embedding = embeddingAt(pieceTokens, position);
      if (!embedding) {
        tokens.push(token as number);
        weights.push(weight);
        continue;
      }
      if (tokens.length + embedding.vectorIds.length > chunkLength) nextChunk();
      tokens.push(...embedding.vectorIds);
      weights.push(...embedding.vectorIds.map(() => weight));
      if (typeof token === 'number') position += embedding.nameIds.length - 1;
    }
  }
  if (tokens.length > 0 || chunks.length === 0) nextChunk(true);
  return { chunks, tokenCount };
}

/**
 * The chunk of the empty prompt, [bos, eos, pad…] with weights 1 (A1111 `empty_chunk`).
 */
export function emptyPromptChunk(tokenizer: ClipTokenizer): PromptChunk {
  return tokenizeWeightedPrompt(tokenizer, '').chunks[0];
}

/**
 * Give prompt and negative prompt the same number of chunks by appending empty-prompt chunks to the
 * shorter one, as A1111 does before classifier-free guidance (`pad_cond_uncond` / `empty_chunk`).
 * @returns new arrays (the inputs are not modified), both of length max(a.length, b.length)
 */
export function padChunks(
  tokenizer: ClipTokenizer,
  a: readonly PromptChunk[],
  b: readonly PromptChunk[],
): [PromptChunk[], PromptChunk[]] {
  const count = Math.max(a.length, b.length);
  const empty = emptyPromptChunk(tokenizer);
  const pad = (chunks: readonly PromptChunk[]) => [
    ...chunks,
    ...Array.from({ length: count - chunks.length }, () => ({ ids: [...empty.ids], weights: [...empty.weights] })),
  ];
  return [pad(a), pad(b)];
}
