/** Words dropped from file names: they make names longer without telling images apart. */
const STOP_WORDS: ReadonlySet<string> = new Set(['a', 'an', 'the', 'of', 'and', 'with', 'in', 'on', 'at', 'to']);

/** At most this many words and characters of the prompt go into a default file name. */
export const SLUG_MAX_WORDS = 6;
export const SLUG_MAX_LENGTH = 48;

/**
 * A short file-name-safe slug of a prompt: "A red apple, on a table!" → "red-apple-table".
 * Accents are folded to ASCII (NFKD), everything but [a-z0-9] separates words, stop words are
 * dropped (unless nothing else is left), and the result keeps at most SLUG_MAX_WORDS words and
 * SLUG_MAX_LENGTH characters. A prompt with no ASCII letters or digits (e.g. Chinese) gives
 * "image". Pure; never throws.
 */
export function promptSlug(prompt: string): string {
  const words = prompt
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((word) => word !== '');
  const meaningful = words.filter((word) => !STOP_WORDS.has(word));
  const chosen = (meaningful.length > 0 ? meaningful : words).slice(0, SLUG_MAX_WORDS);
  let slug = '';
  for (const word of chosen) {
    const next = slug === '' ? word : `${slug}-${word}`;
    if (next.length > SLUG_MAX_LENGTH) {
      if (slug === '') slug = word.slice(0, SLUG_MAX_LENGTH);
      break;
    }
    slug = next;
  }
  return slug === '' ? 'image' : slug;
}
