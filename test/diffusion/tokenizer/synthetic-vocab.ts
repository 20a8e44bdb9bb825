/**
 * Test helper: a tiny tokenizer in CLIP's file format (vocab.json + merges.txt), built in memory.
 * Each listed word becomes one token "<word></w>" through a chain of merges from its left end (the last
 * character carries "</w>"); single characters of the words (and of `extraChars`) are in the
 * vocabulary with and without "</w>"; nothing else is. Ids: specials first, then characters, then words.
 */
export interface SyntheticVocab {
  vocab: string;
  merges: string;
  ids: Record<string, number>;
}

export function buildSyntheticVocab(
  words: string[],
  options: { extraChars?: string; specials?: string[] } = {},
): SyntheticVocab {
  const ids: Record<string, number> = {};
  const add = (token: string) => {
    if (!(token in ids)) ids[token] = Object.keys(ids).length;
  };
  for (const special of options.specials ?? ['<|startoftext|>', '<|endoftext|>']) add(special);
  const chars = new Set([...words.join(''), ...(options.extraChars ?? '')]);
  for (const c of [...chars].sort()) {
    add(c);
    add(`${c}</w>`);
  }
  // Add merges one at a time, each at the lowest priority, until every word is one symbol under
  // (an independent, straightforward) BPE: later merges then never change how earlier words split.
  const merges: string[] = [];
  for (const word of words) {
    for (;;) {
      const symbols = naiveBpe(word, merges);
      if (symbols.length === 1) break;
      merges.push(`${symbols[0]} ${symbols[1]}`);
      add(symbols[0] + symbols[1]);
    }
  }
  return { vocab: JSON.stringify(ids), merges: `#version: 0.2\n${merges.join('\n')}\n`, ids };
}

/** BPE by repeatedly merging the adjacent pair whose merge comes first in the list. */
function naiveBpe(word: string, merges: string[]): string[] {
  const symbols = [...word];
  symbols[symbols.length - 1] += '</w>';
  for (;;) {
    let best = -1;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < symbols.length; i++) {
      const rank = merges.indexOf(`${symbols[i]} ${symbols[i + 1]}`);
      if (rank !== -1 && rank < bestRank) [best, bestRank] = [i, rank];
    }
    if (best === -1) return symbols;
    symbols.splice(best, 2, symbols[best] + symbols[best + 1]);
  }
}
