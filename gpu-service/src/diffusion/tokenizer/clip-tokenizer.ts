/**
 * CLIP's byte-level BPE tokenizer, matching OpenAI's reference (clip/simple_tokenizer.py) id for id, loaded
 * from the Hugging Face file layout that every Stable Diffusion export ships in `tokenizer/`
 * (vocab.json, merges.txt, special_tokens_map.json, tokenizer_config.json).
 *
 * Steps: cleanClipText (ftfy fix, HTML unescape ×2, whitespace collapse, lower-case) → CLIP's word regex →
 * UTF-8 bytes through bytes_to_unicode → BPE with the "</w>" end-of-word suffix → vocabulary ids.
 * A symbol the vocabulary lacks (a small vocabulary whose merges do not reach it) becomes the unk token,
 * as Hugging Face's CLIPTokenizer does; OpenAI's code would raise a KeyError there.
 *
 * Why our own and not @huggingface/tokenizers: that library does reproduce the BPE ids when handed a
 * tokenizer.json built in memory, but not the ftfy/HTML clean-up, and its regex runs through an
 * Oniguruma→JavaScript translation; this file is small and follows the reference line by line.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BpeMerger, parseMerges } from './bpe';
import { encodeWordBytes } from './bytes-to-unicode';
import { CLIP_WHITESPACE, cleanClipText } from './clean-text';

/** The token strings of OpenAI's CLIP vocabulary, used when the config files do not name them. */
export const CLIP_BOS_TOKEN = '<|startoftext|>';
export const CLIP_EOS_TOKEN = '<|endoftext|>';
/** Stable Diffusion's text encoders take 77 positions: bos + 75 tokens + eos. */
export const CLIP_MODEL_MAX_LENGTH = 77;

/** The four tokenizer files, as text (what fromFiles takes). */
export interface ClipTokenizerFiles {
  /** vocab.json: `{ "token": id, ... }` */
  vocab: string;
  /** merges.txt: "#version" line, then "left right" per line */
  merges: string;
  /** special_tokens_map.json (optional) */
  specialTokensMap?: string;
  /** tokenizer_config.json (optional) */
  tokenizerConfig?: string;
}

type TokenSpec = string | { content?: unknown } | null | undefined;

function tokenContent(spec: TokenSpec): string | undefined {
  if (typeof spec === 'string') return spec;
  if (spec && typeof spec === 'object' && typeof spec.content === 'string') return spec.content;
  return undefined;
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

/**
 * A literal as `regex` with IGNORECASE matches it in lower-cased text: after Python's `lower()` the only
 * other character that case-folds onto a lower-case ASCII letter is "ſ" (U+017F, onto "s").
 */
function caseInsensitiveLiteral(text: string): string {
  return [...text.toLowerCase()].map((c) => (c === 's' ? '[sſ]' : c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))).join('');
}

/**
 * CLIP's pre-tokenizer regex (simple_tokenizer.py, compiled with `regex` and re.IGNORECASE): the special
 * tokens, English contractions, runs of letters, single digits, runs of anything else but whitespace.
 * Written without JavaScript's `i` flag, which differs from `regex` on U+0345 (a combining mark that
 * case-folds to a letter: JavaScript counts it as a letter, `regex` as neither letter nor symbol, so the
 * reference drops it); the case-insensitivity that matters after lower-casing is spelled out instead.
 */
function clipWordRegExp(bos: string, eos: string): RegExp {
  const contractions = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"].map(caseInsensitiveLiteral);
  return new RegExp(
    [
      caseInsensitiveLiteral(bos),
      caseInsensitiveLiteral(eos),
      ...contractions,
      '\\p{L}+',
      '\\p{N}',
      `[^${CLIP_WHITESPACE}\\p{L}\\p{N}\\u0345]+`,
    ].join('|'),
    'gu',
  );
}

/** A CLIP tokenizer over one vocabulary. Immutable apart from its BPE cache. */
export class ClipTokenizer {
  /** Id of the beginning-of-text token ("<|startoftext|>", 49406 in CLIP ViT-L/14). */
  readonly bosTokenId: number;
  /** Id of the end-of-text token ("<|endoftext|>", 49407 in CLIP ViT-L/14). */
  readonly eosTokenId: number;
  /** Id used after eos up to the model length: eos for SD 1.x, "!" (0) for SD 2.x configs. */
  readonly padTokenId: number;
  /** Id for symbols the vocabulary lacks, or undefined when the files name no usable unk token. */
  readonly unkTokenId: number | undefined;
  /** Sequence length the text encoder takes (tokenizer_config `model_max_length`, default 77). */
  readonly modelMaxLength: number;

  /** Entries of vocab.json (49,408 for CLIP ViT-L/14): textual-inversion placeholder ids start here. */
  get vocabSize(): number {
    return this.vocab.size;
  }

  private readonly vocab: ReadonlyMap<string, number>;
  private readonly merger: BpeMerger;
  private readonly wordRe: RegExp;

  private constructor(
    vocab: Map<string, number>,
    ranks: Map<string, number>,
    special: { bos: string; eos: string; pad: string; unk: string },
    addedTokens: Map<string, number>,
    modelMaxLength: number,
  ) {
    this.vocab = vocab;
    const idOf = (token: string) => vocab.get(token) ?? addedTokens.get(token);
    const required = (role: string, token: string) => {
      const id = idOf(token);
      if (id === undefined) throw new Error(`tokenizer: ${role} token ${JSON.stringify(token)} is not in the vocabulary`);
      return id;
    };
    this.bosTokenId = required('bos', special.bos);
    this.eosTokenId = required('eos', special.eos);
    this.padTokenId = required('pad', special.pad);
    this.unkTokenId = idOf(special.unk);
    this.modelMaxLength = modelMaxLength;
    this.merger = new BpeMerger(ranks, new Set([special.bos, special.eos]));
    this.wordRe = clipWordRegExp(special.bos, special.eos);
  }

  /**
   * Build a tokenizer from the text of its files.
   * Special tokens come from special_tokens_map.json, then tokenizer_config.json, then CLIP's defaults
   * (bos "<|startoftext|>", eos "<|endoftext|>", pad and unk = eos); a token missing from vocab.json may be found in
   * tokenizer_config's `added_tokens_decoder`.
   * @throws Error when a file is malformed or the bos, eos or pad token has no id
   */
  static fromFiles(files: ClipTokenizerFiles): ClipTokenizer {
    const vocabJson = parseJsonObject(files.vocab, 'vocab.json');
    const vocab = new Map<string, number>();
    for (const [token, id] of Object.entries(vocabJson)) {
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
        throw new Error(`vocab.json: id of ${JSON.stringify(token)} is not a non-negative integer`);
      }
      vocab.set(token, id);
    }
    const ranks = parseMerges(files.merges);
    const map = files.specialTokensMap ? parseJsonObject(files.specialTokensMap, 'special_tokens_map.json') : {};
    const config = files.tokenizerConfig ? parseJsonObject(files.tokenizerConfig, 'tokenizer_config.json') : {};
    const pick = (key: string, fallback: string) =>
      tokenContent(map[key] as TokenSpec) ?? tokenContent(config[key] as TokenSpec) ?? fallback;
    const eos = pick('eos_token', CLIP_EOS_TOKEN);
    const special = {
      bos: pick('bos_token', CLIP_BOS_TOKEN),
      eos,
      // Hugging Face's CLIPTokenizer defaults pad and unk to "<|endoftext|>", i.e. to the eos token.
      pad: pick('pad_token', eos),
      unk: pick('unk_token', eos),
    };
    const addedTokens = new Map<string, number>();
    const decoder = config.added_tokens_decoder;
    if (decoder && typeof decoder === 'object') {
      for (const [id, spec] of Object.entries(decoder as Record<string, TokenSpec>)) {
        const content = tokenContent(spec);
        if (content !== undefined && /^\d+$/.test(id)) addedTokens.set(content, Number(id));
      }
    }
    // Configs without a limit carry a huge sentinel (int(1e30)); CLIP text encoders take 77.
    const maxLength = config.model_max_length;
    const modelMaxLength =
      typeof maxLength === 'number' && Number.isInteger(maxLength) && maxLength >= 2 && maxLength <= 100_000
        ? maxLength
        : CLIP_MODEL_MAX_LENGTH;
    return new ClipTokenizer(vocab, ranks, special, addedTokens, modelMaxLength);
  }

  /**
   * The id of an exact vocabulary entry (e.g. ",</w>"), or undefined.
   */
  tokenToId(token: string): number | undefined {
    return this.vocab.get(token);
  }

  /**
   * Tokenize a prompt without bos/eos and without truncation (OpenAI's `SimpleTokenizer.encode`).
   * @returns token ids, possibly empty (empty or whitespace-only text)
   * @throws Error when a symbol is not in the vocabulary and the files define no unk token
   */
  encode(text: string): number[] {
    const ids: number[] = [];
    for (const match of cleanClipText(text).matchAll(this.wordRe)) {
      for (const symbol of this.merger.merge(encodeWordBytes(match[0]))) {
        const id = this.vocab.get(symbol) ?? this.unkTokenId;
        if (id === undefined) {
          throw new Error(`tokenizer: symbol ${JSON.stringify(symbol)} is not in the vocabulary and there is no unk token`);
        }
        ids.push(id);
      }
    }
    return ids;
  }

  /**
   * Ids for the text encoder: bos, the prompt's ids truncated to `length − 2`, eos, then pad up to `length`
   * (Hugging Face `tokenizer(text, padding="max_length", truncation=True)`, as diffusers calls it).
   * @param length sequence length, default modelMaxLength (77)
   * @returns exactly `length` ids
   * @throws RangeError when length < 2 or not an integer
   */
  encodeForModel(text: string, length: number = this.modelMaxLength): number[] {
    if (!Number.isInteger(length) || length < 2) throw new RangeError(`length must be an integer >= 2, got ${length}`);
    const ids = [this.bosTokenId, ...this.encode(text).slice(0, length - 2), this.eosTokenId];
    while (ids.length < length) ids.push(this.padTokenId);
    return ids;
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
 * Load a tokenizer folder: vocab.json and merges.txt (required), special_tokens_map.json and
 * tokenizer_config.json (when present).
 * @param dir e.g. `<model>/tokenizer`
 * @throws Error when a required file is missing or a file is malformed (the message names the file)
 */
export async function loadClipTokenizer(dir: string): Promise<ClipTokenizer> {
  const [vocab, merges, specialTokensMap, tokenizerConfig] = await Promise.all([
    readFile(join(dir, 'vocab.json'), 'utf8'),
    readFile(join(dir, 'merges.txt'), 'utf8'),
    readOptional(join(dir, 'special_tokens_map.json')),
    readOptional(join(dir, 'tokenizer_config.json')),
  ]);
  try {
    return ClipTokenizer.fromFiles({ vocab, merges, specialTokensMap, tokenizerConfig });
  } catch (err) {
    throw new Error(`${dir}: ${(err as Error).message}`);
  }
}
