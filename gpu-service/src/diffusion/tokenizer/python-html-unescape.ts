/**
 * Python's `html.unescape` (CPython Lib/html/__init__.py), reproduced exactly, because OpenAI's CLIP
 * tokenizer runs it twice over every prompt.
 *
 * The rules differ from a browser's in small ways that change token ids: named references without a
 * semicolon are decoded by longest known prefix ("&notit;" → "¬it;", "&copy2020" → "©2020"), numeric
 * references to C1 code points use the Windows-1252 table, surrogates and out-of-range numbers become
 * U+FFFD and "invalid code points" (most C0/C1 controls, non-characters) are dropped.
 * The names come from the HTML5 table of the `html-entities` package, which has the same 2,231 names as
 * Python's `html.entities.html5`; its two old HTML4 values (&lang; &rang;) are corrected to HTML5's.
 */
import { decodeEntity } from 'html-entities';

/** CPython `html._charref`: numeric references, or up to 32 name characters, each with optional ";". */
const CHARREF_RE = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/g;

/** CPython `html._invalid_charrefs`: numeric references the HTML5 spec remaps (C1 as Windows-1252). */
const INVALID_CHARREFS: ReadonlyMap<number, string> = new Map([
  [0x00, '\ufffd'], [0x0d, '\r'], [0x80, '\u20ac'], [0x81, '\x81'], [0x82, '\u201a'], [0x83, '\u0192'],
  [0x84, '\u201e'], [0x85, '\u2026'], [0x86, '\u2020'], [0x87, '\u2021'], [0x88, '\u02c6'], [0x89, '\u2030'],
  [0x8a, '\u0160'], [0x8b, '\u2039'], [0x8c, '\u0152'], [0x8d, '\x8d'], [0x8e, '\u017d'], [0x8f, '\x8f'],
  [0x90, '\x90'], [0x91, '\u2018'], [0x92, '\u2019'], [0x93, '\u201c'], [0x94, '\u201d'], [0x95, '\u2022'],
  [0x96, '\u2013'], [0x97, '\u2014'], [0x98, '\u02dc'], [0x99, '\u2122'], [0x9a, '\u0161'], [0x9b, '\u203a'],
  [0x9c, '\u0153'], [0x9d, '\x9d'], [0x9e, '\u017e'], [0x9f, '\u0178'],
]);

/** HTML5 values where the html-entities table still carries the HTML4 character. */
const HTML5_OVERRIDES: ReadonlyMap<string, string> = new Map([
  ['lang;', '\u27e8'],
  ['rang;', '\u27e9'],
]);

/** CPython `html._invalid_codepoints`: references to these decode to nothing. */
function isInvalidCodepoint(cp: number): boolean {
  return (
    (cp >= 0x1 && cp <= 0x8) ||
    cp === 0xb ||
    (cp >= 0xe && cp <= 0x1f) ||
    (cp >= 0x7f && cp <= 0x9f) ||
    (cp >= 0xfdd0 && cp <= 0xfdef) ||
    (cp & 0xfffe) === 0xfffe // U+xFFFE and U+xFFFF in every plane
  );
}

/**
 * The HTML5 value of an exact entity name, as Python's `html.entities.html5[name]`.
 * @param name the name after "&", with its ";" when it has one ("amp;", "amp", "notin;")
 * @returns the character(s), or undefined when the name is not in the table
 */
export function lookupHtml5Entity(name: string): string | undefined {
  if (name.startsWith('#')) return undefined; // numeric references are not names
  const override = HTML5_OVERRIDES.get(name);
  if (override !== undefined) return override;
  const entity = `&${name}`;
  const decoded = decodeEntity(entity, { level: 'html5' });
  return decoded === entity ? undefined : decoded;
}

function replaceCharref(match: string, ref: string): string {
  if (ref[0] === '#') {
    const hex = ref[1] === 'x' || ref[1] === 'X';
    const digits = ref.slice(hex ? 2 : 1).replace(/;$/, '');
    const cp = Number.parseInt(digits, hex ? 16 : 10);
    const remapped = INVALID_CHARREFS.get(cp);
    if (remapped !== undefined) return remapped;
    if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return '\ufffd';
    if (isInvalidCodepoint(cp)) return '';
    return String.fromCodePoint(cp);
  }
  const whole = lookupHtml5Entity(ref);
  if (whole !== undefined) return whole;
  // Longest known prefix of at least two characters, as CPython does for legacy names.
  for (let x = ref.length - 1; x > 1; x--) {
    const value = lookupHtml5Entity(ref.slice(0, x));
    if (value !== undefined) return value + ref.slice(x);
  }
  return match;
}

/**
 * Decode HTML character references the way Python's `html.unescape` does.
 * @param text any string
 * @returns the text with named and numeric references replaced; text without "&" is returned as is.
 * @see https://github.com/python/cpython/blob/3.11/Lib/html/__init__.py
 */
export function pythonHtmlUnescape(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(CHARREF_RE, replaceCharref);
}
