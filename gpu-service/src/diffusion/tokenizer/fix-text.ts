/**
 * The part of `ftfy.fix_text` (ftfy 6.x, default settings) that OpenAI's CLIP tokenizer relies on,
 * ported from ftfy's `fix_and_explain` loop (ftfy/__init__.py, ftfy/fixes.py, ftfy/chardata.py; Apache-2.0).
 *
 * Reproduced exactly: per-line processing with the "no HTML unescaping once a line contains '<'" rule,
 * ftfy's own HTML unescaping (semicolon-terminated references only, plus all-caps Latin names such as
 * "&EACUTE;"), C1 controls read as Windows-1252, Latin ligatures (ﬁ → fi), half/full-width forms
 * (ＡＢＣ → ABC, U+3000 → space), curly quotes → straight, line breaks → "\n", lone surrogates → U+FFFD,
 * ANSI terminal escapes and unwanted control characters removed, NFC, repeated until nothing changes.
 *
 * Mojibake repair is ftfyFixEncoding's port of `fix_encoding`, limited to text decoded as Latin-1 or
 * Windows-1252 (see that module).
 */
import { fixEncoding, SLOPPY_1252_HIGH } from './ftfy-fix-encoding';
import { lookupHtml5Entity, pythonHtmlUnescape } from './python-html-unescape';

/**
 * ftfy's `unescape_html`: semicolon-terminated references only; all-caps forms of lower-case names
 * ("&NTILDE;" → "Ñ") when the all-caps name is not itself an entity.
 */
function ftfyUnescapeHtml(text: string): string {
  return text.replace(/&#?[0-9A-Za-z]{1,24};/g, (entity) => {
    const name = entity.slice(1);
    const exact = lookupHtml5Entity(name);
    if (exact !== undefined) return exact;
    if (entity.startsWith('&#')) {
      const decoded = pythonHtmlUnescape(entity);
      return decoded.includes(';') ? entity : decoded;
    }
    const lower = name.toLowerCase();
    if (lower !== name && lower.toUpperCase() === name && pythonHtmlUnescape(entity) === entity) {
      const value = lookupHtml5Entity(lower);
      if (value !== undefined) return value.toUpperCase();
    }
    return entity;
  });
}

const LIGATURES: Readonly<Record<string, string>> = {
  '\u0132': 'IJ', '\u0133': 'ij', '\u0149': '\u02bcn', '\u01f1': 'DZ', '\u01f2': 'Dz', '\u01f3': 'dz',
  '\u01c4': 'D\u017d', '\u01c5': 'D\u017e', '\u01c6': 'd\u017e', '\u01c7': 'LJ', '\u01c8': 'Lj', '\u01c9': 'lj',
  '\u01ca': 'NJ', '\u01cb': 'Nj', '\u01cc': 'nj', '\ufb00': 'ff', '\ufb01': 'fi', '\ufb02': 'fl',
  '\ufb03': 'ffi', '\ufb04': 'ffl', '\ufb05': '\u017ft', '\ufb06': 'st',
};
const LIGATURE_RE = new RegExp(`[${Object.keys(LIGATURES).join('')}]`, 'g');

/** ftfy's WIDTH_MAP: U+FF01–U+FFEF to their NFKC form, and the ideographic space to a space. */
const WIDTH_MAP: ReadonlyMap<string, string> = (() => {
  const map = new Map<string, string>([['\u3000', ' ']]);
  for (let cp = 0xff01; cp < 0xfff0; cp++) {
    const ch = String.fromCharCode(cp);
    const alternate = ch.normalize('NFKC');
    if (alternate !== ch) map.set(ch, alternate);
  }
  return map;
})();

const FIXERS: ReadonlyArray<(text: string) => string> = [
  // fix_c1_controls: C1 controls are almost always Windows-1252 bytes read as Latin-1.
  (t) => t.replace(/[\x80-\x9f]/g, (c) => SLOPPY_1252_HIGH[c.charCodeAt(0) - 0x80]),
  (t) => t.replace(LIGATURE_RE, (c) => LIGATURES[c]),
  (t) => t.replace(/[\u3000\uff01-\uffef]/g, (c) => WIDTH_MAP.get(c) ?? c),
  (t) => t.replace(/[\u201c-\u201f]/g, '"').replace(/[\u02bc\u2018-\u201b]/g, "'"),
  (t) => t.replace(/\r\n/g, '\n').replace(/[\r\u2028\u2029\x85]/g, '\n'),
  (t) => t.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd'),
  (t) => t.replace(/\x1b\[(?:\p{Nd}|;)*[a-zA-Z]/gu, ''),
  (t) => t.replace(/[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/g, ''),
  (t) => t.normalize('NFC'),
];

/** ftfy's `fix_and_explain` loop over one segment: apply every fix until the text stops changing. */
function fixSegment(segment: string, unescapeHtml: boolean): string {
  for (let round = 0; round < 100; round++) {
    const before = segment;
    if (unescapeHtml) segment = ftfyUnescapeHtml(segment);
    segment = fixEncoding(segment);
    for (const fix of FIXERS) segment = fix(segment);
    if (segment === before) break;
  }
  return segment;
}

/**
 * `ftfy.fix_text(text)` with default settings, as far as described in this module's comment.
 * Pure; never throws.
 * @param text any string (lone surrogates allowed)
 * @returns the repaired text, NFC-normalised
 * @see https://github.com/rspeer/python-ftfy (ftfy 6.3, `fix_text`)
 */
export function fixText(text: string): string {
  const out: string[] = [];
  let unescapeHtml = true;
  let pos = 0;
  while (pos < text.length) {
    const newline = text.indexOf('\n', pos);
    const end = newline === -1 ? text.length : newline + 1;
    const segment = text.slice(pos, end);
    // ftfy turns HTML unescaping off for good at the first line that looks like HTML.
    if (segment.includes('<')) unescapeHtml = false;
    out.push(fixSegment(segment, unescapeHtml));
    pos = end;
  }
  return out.join('');
}
