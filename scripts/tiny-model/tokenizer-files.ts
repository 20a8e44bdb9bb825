/**
 * The tiny model's tokenizer: a small byte-level BPE vocabulary in exactly the file format of
 * OpenAI CLIP / Hugging Face CLIPTokenizer (tokenizer/vocab.json, merges.txt,
 * special_tokens_map.json, tokenizer_config.json), so the pipeline's real CLIP tokenizer reads it.
 *
 * Vocabulary layout, as CLIP's (openai/CLIP `simple_tokenizer.py`): ids 0–255 are the 256 byte
 * symbols in `bytes_to_unicode` order, 256–511 the same symbols + `</w>`, then one token per merge
 * in merge order, then `<|startoftext|>` and `<|endoftext|>` (the two highest ids; pad = eos as in
 * SD 1.x). The merges are learnt here by ordinary BPE training on the colour words and prompt
 * words, run until every such word is a single token `word</w>`; because tokenization applies
 * merges in rank order, it replays the training and reaches each word whole.
 */
import { TINY_COLOURS, TINY_PROMPT_WORDS, TINY_SEQUENCE_LENGTH } from './constants';

/** CLIP's begin-of-text special token. */
export const BOS_TOKEN = '<|startoftext|>';
/** CLIP's end-of-text special token (also the padding and unknown token in SD 1.x). */
export const EOS_TOKEN = '<|endoftext|>';

/** The generated tokenizer: `vocab[id]` is the token string; `merges[rank]` a symbol pair. */
export interface TinyTokenizer {
  vocab: string[];
  merges: [string, string][];
}

/**
 * GPT-2/CLIP `bytes_to_unicode`: the printable character standing for each byte 0–255
 * (printable Latin-1 bytes map to themselves; the rest to U+0100 onwards, in byte order).
 * Returned in CLIP's vocabulary order: the printable ranges first, then the remapped bytes.
 */
export function clipByteSymbols(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n += 1;
    }
  }
  return cs.map((c) => String.fromCodePoint(c));
}

/**
 * BPE training (Sennrich et al. 2016, "Neural Machine Translation of Rare Words with Subword
 * Units", with CLIP's `</w>` end-of-word marker on the last symbol): repeatedly merge the most
 * frequent adjacent pair (ties: the smaller "a b" string), left to right in every word, until
 * every word is one symbol. Deterministic for a given word list.
 *
 * @param words lower-case ASCII words (no spaces).
 * @returns the merges in rank order.
 */
export function trainMerges(words: readonly string[]): [string, string][] {
  const seqs = [...new Set(words)].map((w) => {
    const chars = [...w];
    return [...chars.slice(0, -1), `${chars[chars.length - 1]}</w>`];
  });
  const merges: [string, string][] = [];
  for (;;) {
    const counts = new Map<string, number>();
    for (const s of seqs) {
      for (let i = 0; i + 1 < s.length; i++) {
        const key = `${s[i]} ${s[i + 1]}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }
    if (counts.size === 0) return merges;
    let best = '';
    let bestCount = -1;
    for (const [key, count] of counts) {
      if (count > bestCount || (count === bestCount && key < best)) {
        best = key;
        bestCount = count;
      }
    }
    const [first, second] = best.split(' ');
    merges.push([first, second]);
    for (let k = 0; k < seqs.length; k++) {
      const s = seqs[k];
      const merged: string[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === first && s[i + 1] === second) {
          merged.push(first + second);
          i += 1;
        } else merged.push(s[i]);
      }
      seqs[k] = merged;
    }
  }
}

/** The vocabulary and merges of the tiny model (colour words + TINY_PROMPT_WORDS, each one token). */
export function buildTinyTokenizer(): TinyTokenizer {
  const words = [...Object.keys(TINY_COLOURS), ...TINY_PROMPT_WORDS];
  const merges = trainMerges(words);
  const symbols = clipByteSymbols();
  const vocab = [...symbols, ...symbols.map((s) => `${s}</w>`)];
  const seen = new Set(vocab);
  for (const [a, b] of merges) {
    // Training never recreates a token, but CLIP's layout would silently duplicate ids if it did.
    if (seen.has(a + b)) throw new Error(`buildTinyTokenizer: merge result ${a + b} already in the vocabulary`);
    seen.add(a + b);
    vocab.push(a + b);
  }
  vocab.push(BOS_TOKEN, EOS_TOKEN);
  return { vocab, merges };
}

/** A special token entry as Hugging Face writes it in special_tokens_map.json / tokenizer_config.json. */
function addedToken(content: string, withType: boolean): Record<string, unknown> {
  const token: Record<string, unknown> = { content, single_word: false, lstrip: false, rstrip: false, normalized: true };
  if (withType) token.__type = 'AddedToken';
  return token;
}

/**
 * The four tokenizer files, keyed by file name (contents end with a newline except vocab.json,
 * which like Hugging Face's is one JSON line): vocab.json (token → id), merges.txt
 * (`#version: 0.2` then one "a b" pair per line), special_tokens_map.json and
 * tokenizer_config.json in the format of runwayml/stable-diffusion-v1-5's tokenizer.
 */
export function tinyTokenizerFiles(tokenizer: TinyTokenizer): Record<string, string> {
  const vocab: Record<string, number> = {};
  tokenizer.vocab.forEach((token, id) => {
    vocab[token] = id;
  });
  const merges = ['#version: 0.2', ...tokenizer.merges.map(([a, b]) => `${a} ${b}`)].join('\n') + '\n';
  const specialTokensMap = {
    bos_token: addedToken(BOS_TOKEN, false),
    eos_token: addedToken(EOS_TOKEN, false),
    unk_token: addedToken(EOS_TOKEN, false),
    pad_token: EOS_TOKEN,
  };
  const tokenizerConfig = {
    errors: 'replace',
    unk_token: addedToken(EOS_TOKEN, true),
    bos_token: addedToken(BOS_TOKEN, true),
    eos_token: addedToken(EOS_TOKEN, true),
    pad_token: EOS_TOKEN,
    add_prefix_space: false,
    do_lower_case: true,
    model_max_length: TINY_SEQUENCE_LENGTH,
    special_tokens_map_file: './special_tokens_map.json',
    tokenizer_class: 'CLIPTokenizer',
  };
  return {
    'vocab.json': JSON.stringify(vocab),
    'merges.txt': merges,
    'special_tokens_map.json': JSON.stringify(specialTokensMap, null, 2) + '\n',
    'tokenizer_config.json': JSON.stringify(tokenizerConfig, null, 2) + '\n',
  };
}
