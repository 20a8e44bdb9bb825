/**
 * The T5 tokenizer (SentencePiece Unigram) that FLUX.1 (`tokenizer_2/`) and Stable Diffusion 3.x (`tokenizer_3/`)
 * ship as a Hugging Face `tokenizer.json`, run by `@huggingface/tokenizers` (Hugging Face's own JavaScript port of
 * the `tokenizers` pipeline: normalizer — real T5 files carry a Precompiled NFKC charsmap —, pre-tokenizer
 * WhitespaceSplit + Metaspace("▁", prepend always), Unigram Viterbi over the piece scores with consecutive
 * unknown characters fused into one `<unk>`, as the Rust crate does).
 *
 * For the text encoder, ids are the prompt's pieces truncated to `length − 1`, then `</s>`, then `<pad>` up to
 * `length` — transformers `tokenizer(prompt, padding="max_length", max_length=max_sequence_length,
 * truncation=True)` as diffusers' FluxPipeline / StableDiffusion3Pipeline call it (`$A </s>` post-processor).
 * Special tokens come from special_tokens_map.json, then tokenizer_config.json, then T5's names (`<pad>`, `</s>`,
 * `<unk>`: ids 0, 1, 2 in every T5 vocabulary).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

/** T5's special token names (transformers `T5Tokenizer` defaults). */
export const T5_PAD_TOKEN = '<pad>';
export const T5_EOS_TOKEN = '</s>';
export const T5_UNK_TOKEN = '<unk>';

/** The files of a tokenizer folder, as text. */
export interface T5TokenizerFiles {
  /** tokenizer.json (a Unigram model). */
  tokenizerJson: string;
  /** tokenizer_config.json (optional). */
  tokenizerConfig?: string;
  /** special_tokens_map.json (optional). */
  specialTokensMap?: string;
}

/** Ids for the text encoder with the mask that tells tokens from padding. */
export interface T5ModelInput {
  /** Exactly `length` ids: pieces, `</s>`, `<pad>`…. */
  inputIds: number[];
  /** 1 for the pieces and `</s>`, 0 for the padding (the encoder's optional `attention_mask`). */
  attentionMask: number[];
}

function parseJsonObject(text: string, file: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message})`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error(`${file}: expected a JSON object`);
  return value as Record<string, unknown>;
}

function tokenContent(spec: unknown): string | undefined {
  if (typeof spec === 'string') return spec;
  if (spec && typeof spec === 'object' && typeof (spec as { content?: unknown }).content === 'string') return (spec as { content: string }).content;
  return undefined;
}

export class T5Tokenizer {
  /** Id of `</s>`, appended after the pieces. */
  readonly eosTokenId: number;
  /** Id of `<pad>`, filling up to the length. */
  readonly padTokenId: number;
  /** Id of `<unk>`, for characters no piece covers. */
  readonly unkTokenId: number;

  private constructor(
    private readonly tokenizer: Tokenizer,
    special: { eos: number; pad: number; unk: number },
  ) {
    this.eosTokenId = special.eos;
    this.padTokenId = special.pad;
    this.unkTokenId = special.unk;
  }

  /**
   * Build a tokenizer from the text of its files.
   * @throws Error naming the file when a file is not valid JSON, the model is not a Unigram (T5 / SentencePiece) one, or
   *         the pad, eos or unk token is not in the vocabulary.
   */
  static fromFiles(files: T5TokenizerFiles): T5Tokenizer {
    const json = parseJsonObject(files.tokenizerJson, 'tokenizer.json');
    const model = json.model as { type?: unknown } | undefined;
    if (!model || model.type !== 'Unigram') {
      throw new Error(`tokenizer.json: model type ${JSON.stringify(model?.type ?? null)} is not "Unigram" (a T5 tokenizer is a SentencePiece Unigram model)`);
    }
    const config = files.tokenizerConfig ? parseJsonObject(files.tokenizerConfig, 'tokenizer_config.json') : {};
    const map = files.specialTokensMap ? parseJsonObject(files.specialTokensMap, 'special_tokens_map.json') : {};
    const pick = (key: string, fallback: string) => tokenContent(map[key]) ?? tokenContent(config[key]) ?? fallback;
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(json, config);
    } catch (err) {
      throw new Error(`tokenizer.json: ${(err as Error).message}`);
    }
    const idOf = (role: string, token: string) => {
      const id = tokenizer.token_to_id(token);
      if (id === undefined) throw new Error(`tokenizer.json: the ${role} token ${JSON.stringify(token)} is not in the vocabulary`);
      return id;
    };
    return new T5Tokenizer(tokenizer, {
      eos: idOf('eos', pick('eos_token', T5_EOS_TOKEN)),
      pad: idOf('pad', pick('pad_token', T5_PAD_TOKEN)),
      unk: idOf('unk', pick('unk_token', T5_UNK_TOKEN)),
    });
  }

  /** The prompt's pieces (strings, e.g. "▁photo"), without `</s>` and without truncation. */
  tokenize(text: string): string[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).tokens;
  }

  /** The prompt's piece ids, without `</s>` and without truncation (possibly empty). */
  encode(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  /**
   * Ids for the text encoder: pieces truncated to `length − 1`, `</s>`, `<pad>` up to `length`, and the mask.
   * @param length the pipeline's `max_sequence_length` (FLUX.1-schnell 256, FLUX.1-dev and SD 3.x 256 or 512).
   * @throws RangeError when length is not an integer ≥ 1.
   */
  encodeForModelWithMask(text: string, length: number): T5ModelInput {
    if (!Number.isInteger(length) || length < 1) throw new RangeError(`length must be an integer >= 1, got ${length}`);
    const ids = [...this.encode(text).slice(0, length - 1), this.eosTokenId];
    const attentionMask = ids.map(() => 1);
    while (ids.length < length) {
      ids.push(this.padTokenId);
      attentionMask.push(0);
    }
    return { inputIds: ids, attentionMask };
  }

  /** `encodeForModelWithMask(text, length).inputIds`. @throws RangeError when length is not an integer ≥ 1 */
  encodeForModel(text: string, length: number): number[] {
    return this.encodeForModelWithMask(text, length).inputIds;
  }
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Load a T5 tokenizer folder: tokenizer.json (required), tokenizer_config.json and special_tokens_map.json (when
 * present). A folder with only SentencePiece's `spiece.model` is refused: that protobuf is not read here.
 * @param dir e.g. `<model>/tokenizer_2`
 * @throws Error naming the folder when tokenizer.json is missing or a file is malformed.
 */
export async function loadT5Tokenizer(dir: string): Promise<T5Tokenizer> {
  const tokenizerJson = await readOptional(join(dir, 'tokenizer.json'));
  if (tokenizerJson === undefined) throw new Error(`${dir}: tokenizer.json is missing (a T5 tokenizer folder needs the Hugging Face tokenizer.json)`);
  const [tokenizerConfig, specialTokensMap] = await Promise.all([readOptional(join(dir, 'tokenizer_config.json')), readOptional(join(dir, 'special_tokens_map.json'))]);
  try {
    return T5Tokenizer.fromFiles({ tokenizerJson, tokenizerConfig, specialTokensMap });
  } catch (err) {
    throw new Error(`${dir}: ${(err as Error).message}`);
  }
}
