/**
 * GPT-2/CLIP `bytes_to_unicode()`: a reversible map from the 256 byte values to printable characters, so
 * that byte-level BPE works on strings without whitespace or control characters in its symbols.
 * Bytes that are printable in Latin-1 ("!"–"~", "¡"–"¬", "®"–"ÿ") map to themselves; the other 68 map,
 * in byte order, to U+0100, U+0101, … (so the space byte 0x20 becomes "Ġ", U+0120).
 * @see https://github.com/openai/CLIP/blob/main/clip/simple_tokenizer.py
 */
export const BYTE_ENCODER: readonly string[] = (() => {
  const table = new Array<string>(256);
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = String.fromCharCode(printable(b) ? b : 256 + next++);
  }
  return table;
})();

const UTF8 = new TextEncoder();

/**
 * A word as CLIP's BPE sees it: its UTF-8 bytes, each replaced by its BYTE_ENCODER character.
 * @param word any string (lone surrogates are encoded as U+FFFD, as TextEncoder does)
 */
export function encodeWordBytes(word: string): string {
  let out = '';
  for (const byte of UTF8.encode(word)) out += BYTE_ENCODER[byte];
  return out;
}
