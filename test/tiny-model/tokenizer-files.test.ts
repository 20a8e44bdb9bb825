import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildTinyModelFiles } from '../../scripts/tiny-model/generate';
import { TINY_COLOURS, TINY_PROMPT_WORDS } from '../../scripts/tiny-model/constants';
import { trainMerges } from '../../scripts/tiny-model/tokenizer-files';
import { clipBpe, mergeRanks } from './helpers';

const files = buildTinyModelFiles();
const text = (name: string) => new TextDecoder().decode(files.get(`tokenizer/${name}`));
const vocab = JSON.parse(text('vocab.json')) as Record<string, number>;
const mergeLines = text('merges.txt').split('\n');
const ranks = mergeRanks(mergeLines);
const byId = Object.entries(vocab).sort((a, b) => a[1] - b[1]).map(([token]) => token);

const SHARED = path.resolve(__dirname, '../..', '..', 'shared');
const CLIP_DIR = path.join(SHARED, 'fixtures', 'clip-tokenizer');
const hasClipFixtures = existsSync(path.join(CLIP_DIR, 'vocab.json'));
if (!hasClipFixtures) console.warn(`skipping CLIP layout comparison: ${CLIP_DIR} is missing (../shared beside the repo)`);

describe('tiny model tokenizer files (CLIP format)', () => {
  it('has contiguous, unique vocabulary ids with the specials last', () => {
    const ids = Object.values(vocab).sort((a, b) => a - b);
    expect(ids).toEqual(ids.map((_, i) => i));
    expect(vocab['<|startoftext|>']).toBe(ids.length - 2);
    expect(vocab['<|endoftext|>']).toBe(ids.length - 1);
  });

  it('starts with the 256 byte symbols, then the same symbols with </w>', () => {
    for (let i = 0; i < 256; i++) expect(byId[256 + i]).toBe(`${byId[i]}</w>`);
    expect(new Set(byId.slice(0, 256)).size).toBe(256);
    expect(byId.slice(0, 3)).toEqual(['!', '"', '#']);
    for (const c of 'abcdefghijklmnopqrstuvwxyz0123456789') {
      expect(vocab[c]).toBeDefined();
      expect(vocab[`${c}</w>`]).toBeDefined();
    }
  });

  it.skipIf(!hasClipFixtures)('orders the byte symbols exactly as the real CLIP ViT-L/14 vocabulary', () => {
    const clip = JSON.parse(readFileSync(path.join(CLIP_DIR, 'vocab.json'), 'utf8')) as Record<string, number>;
    for (let i = 0; i < 512; i++) expect(clip[byId[i]], byId[i]).toBe(i);
  });

  it('has merges.txt with the "#version: 0.2" header, one "a b" pair per line, each result in order after id 511', () => {
    expect(mergeLines[0]).toBe('#version: 0.2');
    const pairs = mergeLines.slice(1).filter((l) => l.length > 0);
    expect(pairs.length).toBe(byId.length - 512 - 2);
    pairs.forEach((line, rank) => {
      const parts = line.split(' ');
      expect(parts).toHaveLength(2);
      expect(vocab[parts[0]], line).toBeDefined();
      expect(vocab[parts[1]], line).toBeDefined();
      expect(vocab[parts[0] + parts[1]]).toBe(512 + rank);
    });
  });

  it('makes every colour word and prompt word a single token word</w> through CLIP BPE', () => {
    for (const word of [...Object.keys(TINY_COLOURS), ...TINY_PROMPT_WORDS]) {
      expect(clipBpe(word, ranks), word).toEqual([`${word}</w>`]);
    }
  });

  it('still tokenizes unknown words into vocabulary tokens', () => {
    for (const word of ['zebra', 'xylophone', 'reddish', 'q']) {
      const tokens = clipBpe(word, ranks);
      expect(tokens.join('')).toBe(`${word}</w>`);
      for (const token of tokens) expect(vocab[token], token).toBeDefined();
    }
    expect(clipBpe('zebra', ranks).length).toBeGreaterThan(1);
  });

  it('trains merges that rebuild words sharing prefixes (green/grey/gray, blue/black/brown)', () => {
    const words = ['green', 'grey', 'gray', 'grass', 'blue', 'black', 'brown', 'bright'];
    const ranksOf = new Map(trainMerges(words).map(([a, b], rank) => [`${a} ${b}`, rank]));
    for (const word of words) expect(clipBpe(word, ranksOf)).toEqual([`${word}</w>`]);
  });

  it('declares eos as pad and unk, bos/eos specials and max length 77, as SD 1.x', () => {
    const config = JSON.parse(text('tokenizer_config.json'));
    expect(config).toMatchObject({ model_max_length: 77, do_lower_case: true, pad_token: '<|endoftext|>', tokenizer_class: 'CLIPTokenizer' });
    expect(config.bos_token.content).toBe('<|startoftext|>');
    expect(config.eos_token.content).toBe('<|endoftext|>');
    const special = JSON.parse(text('special_tokens_map.json'));
    expect(special.pad_token).toBe('<|endoftext|>');
    expect(special.unk_token.content).toBe('<|endoftext|>');
  });
});
