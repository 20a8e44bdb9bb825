import { describe, expect, it } from 'vitest';
import { padChunks, tokenizeWeightedPrompt } from '../../../gpu-service/src/diffusion/prompt/chunk-prompt';
import { PromptSyntaxError } from '../../../gpu-service/src/diffusion/prompt/parse-attention';
import { ClipTokenizer } from '../../../gpu-service/src/diffusion/tokenizer/clip-tokenizer';
import { buildSyntheticVocab } from '../tokenizer/synthetic-vocab';

// 120 one-token words ("wa", "wb", …, "wea", …) in a synthetic CLIP-format vocabulary, plus ",".
const WORDS = Array.from({ length: 120 }, (_, i) => `w${String.fromCharCode(97 + Math.floor(i / 26))}${String.fromCharCode(97 + (i % 26))}`);
const synthetic = buildSyntheticVocab(WORDS, { extraChars: ',' });
const tokenizer = ClipTokenizer.fromFiles({ vocab: synthetic.vocab, merges: synthetic.merges });
const BOS = tokenizer.bosTokenId;
const EOS = tokenizer.eosTokenId;
const COMMA = synthetic.ids[',</w>'];
const id = (word: string) => synthetic.ids[`${word}</w>`];
const words = (from: number, to: number) => WORDS.slice(from, to);
/** bos + ids + eos padding to 77. */
const chunkIds = (ids: number[]) => [BOS, ...ids, ...Array(76 - ids.length).fill(EOS)];
const ones = (n: number) => Array(n).fill(1);

describe('tokenizeWeightedPrompt (AUTOMATIC1111 chunking)', () => {
  it('keeps a short prompt in one 77-token chunk with its weights', () => {
    const { chunks, tokenCount } = tokenizeWeightedPrompt(tokenizer, '(waa:1.5) wab [wac]');
    expect(chunks).toHaveLength(1);
    expect(chunks[0].ids).toEqual(chunkIds([id('waa'), id('wab'), id('wac')]));
    expect(chunks[0].weights).toEqual([1, 1.5, 1, 1 / 1.1, ...ones(73)]);
    expect(tokenCount).toBe(3);
  });

  it('splits at 75 tokens when no comma is near', () => {
    const { chunks, tokenCount } = tokenizeWeightedPrompt(tokenizer, words(0, 80).join(' '));
    expect(chunks).toHaveLength(2);
    expect(chunks[0].ids).toEqual([BOS, ...words(0, 75).map(id), EOS]);
    expect(chunks[1].ids).toEqual(chunkIds(words(75, 80).map(id)));
    expect(chunks.every((c) => c.weights.length === 77 && c.weights.every((w) => w === 1))).toBe(true);
    expect(tokenCount).toBe(80);
  });

  it('moves the words after the last comma to the next chunk when the comma is within 20 tokens', () => {
    const text = `${words(0, 70).join(' ')}, (${words(70, 80).join(' ')}:1.2)`;
    const { chunks } = tokenizeWeightedPrompt(tokenizer, text);
    expect(chunks).toHaveLength(2);
    expect(chunks[0].ids).toEqual(chunkIds([...words(0, 70).map(id), COMMA]));
    expect(chunks[0].weights).toEqual(ones(77));
    expect(chunks[1].ids).toEqual(chunkIds(words(70, 80).map(id)));
    expect(chunks[1].weights).toEqual([1, ...Array(10).fill(1.2), ...ones(66)]);
  });

  it('cuts at 75 when the last comma is more than 20 tokens back, or when backtracking is off', () => {
    const farComma = `${words(0, 10).join(' ')}, ${words(10, 80).join(' ')}`;
    const far = tokenizeWeightedPrompt(tokenizer, farComma).chunks;
    expect(far[0].ids).toEqual([BOS, ...words(0, 10).map(id), COMMA, ...words(10, 74).map(id), EOS]);
    const near = `${words(0, 70).join(' ')}, ${words(70, 80).join(' ')}`;
    const off = tokenizeWeightedPrompt(tokenizer, near, { commaPaddingBacktrack: 0 }).chunks;
    expect(off[0].ids).toEqual([BOS, ...words(0, 70).map(id), COMMA, ...words(70, 74).map(id), EOS]);
    expect(off[1].ids).toEqual(chunkIds(words(74, 80).map(id)));
  });

  it('starts a new chunk at BREAK', () => {
    const { chunks, tokenCount } = tokenizeWeightedPrompt(tokenizer, 'waa wab BREAK wac');
    expect(chunks.map((c) => c.ids)).toEqual([chunkIds([id('waa'), id('wab')]), chunkIds([id('wac')])]);
    expect(tokenCount).toBe(75 + 1);
    expect(tokenizeWeightedPrompt(tokenizer, 'BREAK waa').chunks.map((c) => c.ids)).toEqual([chunkIds([]), chunkIds([id('waa')])]);
  });

  it('encodes an empty prompt as one chunk, padding after eos with the pad token when it differs', () => {
    expect(tokenizeWeightedPrompt(tokenizer, '').chunks).toEqual([{ ids: chunkIds([]), weights: ones(77) }]);
    const sd2 = ClipTokenizer.fromFiles({
      vocab: synthetic.vocab,
      merges: synthetic.merges,
      specialTokensMap: JSON.stringify({ pad_token: ',' }),
    });
    const { chunks } = tokenizeWeightedPrompt(sd2, 'waa');
    expect(chunks[0].ids).toEqual([BOS, id('waa'), EOS, ...Array(74).fill(sd2.padTokenId)]);
  });

  it('pads prompt and negative prompt to the same number of chunks with empty-prompt chunks', () => {
    const long = tokenizeWeightedPrompt(tokenizer, words(0, 100).join(' ')).chunks;
    const short = tokenizeWeightedPrompt(tokenizer, 'waa').chunks;
    const [a, b] = padChunks(tokenizer, long, short);
    expect(a).toEqual(long);
    expect(b).toHaveLength(2);
    expect(b[0]).toEqual(short[0]);
    expect(b[1]).toEqual({ ids: chunkIds([]), weights: ones(77) });
    expect(short).toHaveLength(1);
  });

  it('propagates a prompt syntax error', () => {
    expect(() => tokenizeWeightedPrompt(tokenizer, '(waa:1..2)')).toThrow(PromptSyntaxError);
  });
});
