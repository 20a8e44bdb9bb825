import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ClipTokenizer, loadClipTokenizer } from '../../../gpu-service/src/diffusion/tokenizer/clip-tokenizer';
import { buildSyntheticVocab } from './synthetic-vocab';

const FIXTURES = path.resolve(__dirname, '../../../..', 'shared', 'fixtures', 'clip-tokenizer');
const hasShared = existsSync(path.join(FIXTURES, 'cases.json'));
if (!hasShared) console.warn(`skipping CLIP ViT-L/14 reference tests: ${FIXTURES} is absent (../shared beside the repo)`);

interface ReferenceCase {
  text: string;
  ids: number[];
  input_ids_77: number[];
}

describe.skipIf(!hasShared)('ClipTokenizer against OpenAI CLIP reference ids (../shared fixtures)', () => {
  const cases: ReferenceCase[] = hasShared ? JSON.parse(readFileSync(path.join(FIXTURES, 'cases.json'), 'utf8')).cases : [];
  let loaded: Promise<ClipTokenizer> | undefined;
  const reference = () => (loaded ??= loadClipTokenizer(FIXTURES));

  it('loads the ViT-L/14 files with SD 1.x special tokens', async () => {
    const tokenizer = await reference();
    expect(tokenizer.bosTokenId).toBe(49406);
    expect(tokenizer.eosTokenId).toBe(49407);
    expect(tokenizer.padTokenId).toBe(49407);
    expect(tokenizer.unkTokenId).toBe(49407);
    expect(tokenizer.modelMaxLength).toBe(77);
    expect(tokenizer.tokenToId(',</w>')).toBe(267);
  });

  it.each(cases.map((c) => [c.text, c] as const))('%s', async (_text, c) => {
    const tokenizer = await reference();
    expect([tokenizer.bosTokenId, ...tokenizer.encode(c.text), tokenizer.eosTokenId]).toEqual(c.ids);
    expect(tokenizer.encodeForModel(c.text)).toEqual(c.input_ids_77);
  });

  it('truncates long prompts to bos + 75 + eos', async () => {
    const tokenizer = await reference();
    const text = Array.from({ length: 100 }, (_, i) => `word${i}`).join(' ');
    const ids = tokenizer.encode(text);
    expect(ids.length).toBeGreaterThan(150);
    const model = tokenizer.encodeForModel(text);
    expect(model).toHaveLength(77);
    expect(model.slice(1, 76)).toEqual(ids.slice(0, 75));
    expect(model[76]).toBe(49407);
    expect(tokenizer.encodeForModel(text, 10)).toEqual([49406, ...ids.slice(0, 8), 49407]);
  });

  it('honours an SD 2.x config that pads with "!" (id 0)', () => {
    const tokenizer = ClipTokenizer.fromFiles({
      vocab: readFileSync(path.join(FIXTURES, 'vocab.json'), 'utf8'),
      merges: readFileSync(path.join(FIXTURES, 'merges.txt'), 'utf8'),
      specialTokensMap: JSON.stringify({ bos_token: '<|startoftext|>', eos_token: '<|endoftext|>', pad_token: '!' }),
    });
    expect(tokenizer.padTokenId).toBe(0);
    const ids = tokenizer.encodeForModel('a red apple');
    expect(ids.slice(0, 6)).toEqual([49406, 320, 736, 3055, 49407, 0]);
    expect(ids.slice(5).every((id) => id === 0)).toBe(true);
  });
});

describe('ClipTokenizer with a small synthetic CLIP-format vocabulary', () => {
  const words = ['a', 'red', 'apple', 'blue', 'sky', 'green', 'grass'];
  const synthetic = buildSyntheticVocab(words, { extraChars: ',!' });
  const tokenizer = ClipTokenizer.fromFiles({ vocab: synthetic.vocab, merges: synthetic.merges });
  const id = (token: string) => synthetic.ids[token];

  it('merges known words into single tokens, after CLIP clean-up', () => {
    expect(tokenizer.encode('A  RED\tapple')).toEqual([id('a</w>'), id('red</w>'), id('apple</w>')]);
    expect(tokenizer.encode('blue sky, green grass!')).toEqual([
      id('blue</w>'), id('sky</w>'), id(',</w>'), id('green</w>'), id('grass</w>'), id('!</w>'),
    ]);
  });

  it('stops merging where the merges end and keeps the partial symbols', () => {
    // "reds": r e d s</w> — "red" merges need d</w> at the end, so only "r e" → "re" applies.
    expect(tokenizer.encode('reds')).toEqual([id('re'), id('d'), id('s</w>')]);
  });

  it('maps symbols missing from the vocabulary to unk (<|endoftext|> by default)', () => {
    expect(tokenizer.encode('zebra')).toEqual([tokenizer.eosTokenId, id('e'), id('b'), id('r'), id('a</w>')]);
    expect(tokenizer.encode('€')).toEqual(Array(3).fill(tokenizer.eosTokenId)); // three UTF-8 bytes, none known
  });

  it('recognises the special tokens written in the prompt', () => {
    expect(tokenizer.encode('red <|endoftext|> sky')).toEqual([id('red</w>'), tokenizer.eosTokenId, id('sky</w>')]);
  });

  it('pads with eos by default and encodes the empty prompt as bos, eos, pad…', () => {
    expect(tokenizer.encodeForModel('')).toEqual([0, ...Array(76).fill(1)]);
    expect(tokenizer.encodeForModel('red sky', 6)).toEqual([0, id('red</w>'), id('sky</w>'), 1, 1, 1]);
    expect(() => tokenizer.encodeForModel('red', 1)).toThrow(RangeError);
  });

  it('throws on an unknown symbol when the files name no usable unk token', () => {
    const noUnk = ClipTokenizer.fromFiles({
      vocab: synthetic.vocab,
      merges: synthetic.merges,
      tokenizerConfig: JSON.stringify({ unk_token: '<unk>', model_max_length: 16 }),
    });
    expect(noUnk.unkTokenId).toBeUndefined();
    expect(noUnk.modelMaxLength).toBe(16);
    expect(noUnk.encode('red')).toEqual([id('red</w>')]);
    expect(() => noUnk.encode('zebra')).toThrow(/not in the vocabulary/);
  });

  it('takes special tokens from tokenizer_config added_tokens_decoder when vocab.json lacks them', () => {
    const v = buildSyntheticVocab(['red'], { specials: [] });
    const t = ClipTokenizer.fromFiles({
      vocab: v.vocab,
      merges: v.merges,
      tokenizerConfig: JSON.stringify({
        bos_token: { content: '<s>', __type: 'AddedToken' },
        eos_token: '</s>',
        added_tokens_decoder: { '100': { content: '<s>' }, '101': { content: '</s>' } },
      }),
    });
    expect([t.bosTokenId, t.eosTokenId, t.padTokenId]).toEqual([100, 101, 101]);
    expect(t.encodeForModel('red', 4)).toEqual([100, v.ids['red</w>'], 101, 101]);
  });

  it('rejects files without the bos/eos tokens, malformed JSON and malformed merges', () => {
    const v = buildSyntheticVocab(['red'], { specials: [] });
    expect(() => ClipTokenizer.fromFiles({ vocab: v.vocab, merges: v.merges })).toThrow(/bos token/);
    expect(() => ClipTokenizer.fromFiles({ vocab: '{', merges: '' })).toThrow(/vocab.json/);
    expect(() => ClipTokenizer.fromFiles({ vocab: synthetic.vocab, merges: '#version: 0.2\na b c\n' })).toThrow(/merges.txt line 2/);
  });

  it('loadClipTokenizer reads a folder, with the optional files absent', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'clip-tok-'));
    try {
      writeFileSync(path.join(dir, 'vocab.json'), synthetic.vocab);
      writeFileSync(path.join(dir, 'merges.txt'), synthetic.merges);
      const loaded = await loadClipTokenizer(dir);
      expect(loaded.encode('green grass')).toEqual([id('green</w>'), id('grass</w>')]);
      rmSync(path.join(dir, 'merges.txt'));
      await expect(loadClipTokenizer(dir)).rejects.toThrow(/merges.txt/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
