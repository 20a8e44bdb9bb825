/**
 * Byte-pair merging as in OpenAI CLIP's `SimpleTokenizer.bpe`: a word (already byte-encoded) is split into
 * characters, the last one carrying the end-of-word suffix "</w>"; then, repeatedly, the adjacent pair with
 * the lowest merge rank is merged everywhere in the word (left to right, non-overlapping), until no adjacent
 * pair has a rank. Results are cached per word.
 * @see https://github.com/openai/CLIP/blob/main/clip/simple_tokenizer.py
 */

/** End-of-word marker appended to a word's last symbol. */
export const END_OF_WORD = '</w>';

/** Largest number of cached words before the cache is emptied (a long-running service sees many prompts). */
const CACHE_LIMIT = 50_000;

/**
 * Parse merges.txt: "#version" lines are skipped, then one merge per line, "left right".
 * @returns a map from "left right" to rank (its index among the merge lines, from 0; a repeated merge keeps
 *   its last index, as Python's `dict(zip(merges, range(len(merges))))` does)
 * @throws Error when a line does not hold exactly two symbols
 */
export function parseMerges(text: string): Map<string, number> {
  const ranks = new Map<string, number>();
  const lines = text.split('\n');
  let rank = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '' || line.startsWith('#version')) continue;
    const parts = line.split(/\s+/);
    if (parts.length !== 2) {
      throw new Error(`merges.txt line ${i + 1}: expected "left right", got ${JSON.stringify(line)}`);
    }
    ranks.set(`${parts[0]} ${parts[1]}`, rank++);
  }
  return ranks;
}

/** Applies a merge table to byte-encoded words; holds its own cache (one per tokenizer, no globals). */
export class BpeMerger {
  private readonly cache = new Map<string, readonly string[]>();

  /**
   * @param ranks "left right" → rank, as returned by parseMerges
   * @param fixed words that are never split (CLIP pre-seeds its cache with its two special tokens)
   */
  constructor(
    private readonly ranks: ReadonlyMap<string, number>,
    private readonly fixed: ReadonlySet<string> = new Set(),
  ) {}

  /**
   * Merge one word.
   * @param word a non-empty byte-encoded word (see encodeWordBytes)
   * @returns its symbols; the last ends with "</w>" unless the word is a fixed special token
   */
  merge(word: string): readonly string[] {
    if (this.fixed.has(word)) return [word];
    const cached = this.cache.get(word);
    if (cached) return cached;
    const chars = [...word];
    let symbols = chars.slice(0, -1);
    symbols.push(chars[chars.length - 1] + END_OF_WORD);
    while (symbols.length > 1) {
      let best: string | undefined;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const rank = this.ranks.get(`${symbols[i]} ${symbols[i + 1]}`);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          best = `${symbols[i]} ${symbols[i + 1]}`;
        }
      }
      if (best === undefined) break;
      const [first, second] = best.split(' ');
      const merged: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (symbols[i] === first && i + 1 < symbols.length && symbols[i + 1] === second) {
          merged.push(first + second);
          i++;
        } else {
          merged.push(symbols[i]);
        }
      }
      symbols = merged;
    }
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(word, symbols);
    return symbols;
  }
}
