/**
 * T5Tokenizer (@huggingface/tokenizers over a tokenizer.json) against the ids transformers' T5Tokenizer gave for the
 * FLUX.1 / SD 3.5 fixture cases (../shared/fixtures/checkpoints-dit: tokenizer_2 / tokenizer_3, a tiny Unigram with a
 * WhitespaceSplit + Metaspace pre-tokenizer), plus truncation, padding, unknown characters and refused files.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { T5Tokenizer, loadT5Tokenizer } from '../../../gpu-service/src/diffusion/tokenizer/t5-tokenizer';
import { fixtureDir, hasFixture } from '../../helpers/checkpoint-fixtures';

interface TokenizerCase {
  family: string;
  caseId: string;
  tokenizer: string;
}
const CASES: TokenizerCase[] = [
  { family: 'flux-schnell', caseId: 'flux.text_encoder_2', tokenizer: 'diffusers/tokenizer_2' },
  { family: 'sd3.5', caseId: 'sd35.text_encoder_3', tokenizer: 'diffusers/tokenizer_3' },
];

const work = mkdtempSync(path.join(tmpdir(), 't5-tokenizer-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A minimal Unigram tokenizer.json (T5's shape: pad, eos, unk first; Metaspace pre-tokenizer; `$A </s>`). */
function tinyTokenizerJson(pieces: Array<[string, number]>, model: Record<string, unknown> = {}): string {
  return JSON.stringify({
    version: '1.0',
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'WhitespaceSplit' }, { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true }] },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      pair: [],
      special_tokens: { '</s>': { id: '</s>', ids: [1], tokens: ['</s>'] } },
    },
    decoder: null,
    model: { type: 'Unigram', unk_id: 2, vocab: [['<pad>', 0], ['</s>', 0], ['<unk>', 0], ...pieces], byte_fallback: false, ...model },
  });
}

describe.skipIf(!hasFixture('checkpoints-dit'))('T5Tokenizer vs transformers T5Tokenizer ids (checkpoints-dit)', () => {
  for (const c of CASES) {
    it(`${c.caseId}: ${c.tokenizer} gives the case's pieces and padded ids`, async () => {
      const dir = fixtureDir(`checkpoints-dit/${c.family}`);
      const fixture = (JSON.parse(readFileSync(path.join(dir, 'cases.json'), 'utf8')).cases as Array<Record<string, unknown>>).find((x) => x.id === c.caseId)!;
      const tokenizer = await loadT5Tokenizer(path.join(dir, c.tokenizer));
      expect([tokenizer.padTokenId, tokenizer.eosTokenId, tokenizer.unkTokenId]).toEqual([0, 1, 2]);
      const prompts = fixture.prompts as string[];
      const ids = fixture.input_ids as number[][];
      const pieces = fixture.t5_tokens as string[][];
      prompts.forEach((prompt, i) => {
        const length = ids[i].length;
        expect([...tokenizer.tokenize(prompt), '</s>'], prompt).toEqual(pieces[i]);
        expect(tokenizer.encodeForModel(prompt, length), prompt).toEqual(ids[i]);
        const { attentionMask } = tokenizer.encodeForModelWithMask(prompt, length);
        expect(attentionMask).toEqual(ids[i].map((_, j) => (j < pieces[i].length ? 1 : 0)));
      });
    });
  }

  it('truncates to length − 1 pieces and ends with </s>; an empty prompt is </s> and padding', async () => {
    const tokenizer = await loadT5Tokenizer(fixtureDir('checkpoints-dit/flux-schnell/diffusers/tokenizer_2'));
    const long = 'a photo of a red fox in the snow, a photo of a red fox in the snow';
    const pieces = tokenizer.encode(long);
    expect(pieces.length).toBeGreaterThan(12);
    expect(tokenizer.encodeForModel(long, 8)).toEqual([...pieces.slice(0, 7), 1]);
    expect(tokenizer.encodeForModel(long, 1)).toEqual([1]);
    expect(tokenizer.encodeForModel('', 4)).toEqual([1, 0, 0, 0]);
    expect(tokenizer.encodeForModel('   ', 3)).toEqual([1, 0, 0]);
    expect(() => tokenizer.encodeForModel('x', 0)).toThrow(RangeError);
    expect(() => tokenizer.encodeForModel('x', 2.5)).toThrow(/length must be an integer >= 1, got 2.5/);
  });
});

describe('T5Tokenizer on a tokenizer.json written here', () => {
  const pieces: Array<[string, number]> = [['▁', -3], ['▁a', -2], ['▁cat', -2], ['▁c', -4], ['a', -4], ['t', -4], ['s', -4]];

  it('Viterbi over piece scores, Metaspace word starts, consecutive unknown characters fused into one <unk>', () => {
    const tokenizer = T5Tokenizer.fromFiles({ tokenizerJson: tinyTokenizerJson(pieces) });
    expect(tokenizer.tokenize('a cats')).toEqual(['▁a', '▁cat', 's']);
    expect(tokenizer.encode('a cats')).toEqual([4, 5, 9]);
    // "東京" has no piece: one <unk> for the run, as the Rust tokenizers crate and SentencePiece do.
    expect(tokenizer.encodeForModel('a 東京 cat', 8)).toEqual([4, 3, 2, 5, 1, 0, 0, 0]);
  });

  it('special tokens from special_tokens_map.json / tokenizer_config.json override the T5 names', () => {
    const json = tinyTokenizerJson([...pieces, ['<end>', 0]]);
    const tokenizer = T5Tokenizer.fromFiles({ tokenizerJson: json, specialTokensMap: JSON.stringify({ eos_token: { content: '<end>' } }) });
    expect(tokenizer.eosTokenId).toBe(10);
    expect(tokenizer.encodeForModel('a', 3)).toEqual([4, 10, 0]);
    expect(T5Tokenizer.fromFiles({ tokenizerJson: json, tokenizerConfig: JSON.stringify({ pad_token: '<end>' }) }).padTokenId).toBe(10);
  });

  it('refuses files that are not a T5 tokenizer, with the file and the reason', async () => {
    expect(() => T5Tokenizer.fromFiles({ tokenizerJson: '{' })).toThrow(/tokenizer\.json: not valid JSON/);
    const bpe = JSON.stringify({ ...JSON.parse(tinyTokenizerJson(pieces)), model: { type: 'BPE', vocab: {}, merges: [] } });
    expect(() => T5Tokenizer.fromFiles({ tokenizerJson: bpe })).toThrow(/model type "BPE" is not "Unigram"/);
    expect(() => T5Tokenizer.fromFiles({ tokenizerJson: tinyTokenizerJson(pieces), specialTokensMap: JSON.stringify({ eos_token: '<eos>' }) })).toThrow(/the eos token "<eos>" is not in the vocabulary/);
    expect(() => T5Tokenizer.fromFiles({ tokenizerJson: tinyTokenizerJson(pieces), tokenizerConfig: '[1]' })).toThrow(/tokenizer_config\.json: expected a JSON object/);
    const empty = mkdtempSync(path.join(work, 'empty-'));
    writeFileSync(path.join(empty, 'spiece.model'), 'not read');
    await expect(loadT5Tokenizer(empty)).rejects.toThrow(/tokenizer\.json is missing/);
  });
});
