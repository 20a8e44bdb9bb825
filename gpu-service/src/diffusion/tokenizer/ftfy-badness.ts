/**
 * ftfy's mojibake detector (ftfy 6.3.1, ftfy/badness.py `BADNESS_RE` and `is_bad`; Apache-2.0), translated
 * from Python `re` to a JavaScript regular expression: `\s` is Python's Unicode whitespace, `\w` is
 * letters, digits and "_", `.` is any character but "\n". Each alternative is a character sequence that is
 * rare in real text and common when UTF-8 was decoded with the wrong single-byte encoding.
 */
import { MOJIBAKE_CATEGORIES as C } from './ftfy-character-classes';

const PY_SPACE = String.raw`[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]`;
const PY_WORD = String.raw`[\p{L}\p{N}_]`;

const ALTERNATIVES: readonly string[] = [
  String.raw`[${C.c1}]`,
  String.raw`[${C.bad}${C.lowerAccented}${C.upperAccented}${C.box}${C.startPunctuation}${C.endPunctuation}${C.currency}${C.numeric}${C.law}][${C.bad}]`,
  String.raw`[a-zA-Z][${C.lowerCommon}${C.upperCommon}][${C.bad}]`,
  String.raw`[${C.bad}][${C.lowerAccented}${C.upperAccented}${C.box}${C.startPunctuation}${C.endPunctuation}${C.currency}${C.numeric}${C.law}]`,
  String.raw`[${C.lowerAccented}${C.lowerCommon}${C.box}${C.endPunctuation}${C.currency}${C.numeric}][${C.upperAccented}]`,
  String.raw`[${C.box}${C.endPunctuation}${C.currency}${C.numeric}][${C.lowerAccented}]`,
  String.raw`[${C.lowerAccented}${C.box}${C.endPunctuation}][${C.currency}]`,
  String.raw`${PY_SPACE}[${C.upperAccented}][${C.currency}]`,
  String.raw`[${C.upperAccented}${C.box}][${C.numeric}${C.law}]`,
  String.raw`[${C.lowerAccented}${C.upperAccented}${C.box}${C.currency}${C.endPunctuation}][${C.startPunctuation}][${C.numeric}]`,
  String.raw`[${C.lowerAccented}${C.upperAccented}${C.currency}${C.numeric}${C.box}${C.law}][${C.endPunctuation}][${C.startPunctuation}]`,
  String.raw`[${C.currency}${C.numeric}${C.box}][${C.startPunctuation}]`,
  String.raw`[a-z][${C.upperAccented}][${C.startPunctuation}${C.currency}]`,
  String.raw`[${C.box}][${C.kaomoji}]`,
  String.raw`[${C.lowerAccented}${C.upperAccented}${C.currency}${C.numeric}${C.startPunctuation}${C.endPunctuation}${C.law}][${C.box}]`,
  String.raw`[${C.box}][${C.endPunctuation}]`,
  String.raw`[${C.lowerAccented}${C.upperAccented}][${C.startPunctuation}${C.endPunctuation}]${PY_WORD}`,
  // The ligature œ when not followed by an unaccented Latin letter.
  String.raw`[Œœ][^A-Za-z]`,
  // Degree signs after capital letters.
  String.raw`[${C.upperAccented}]°`,
  // Common Windows-1252 two-character mojibake not covered above.
  String.raw`[ÂÃÎÐ][€œŠš¢£Ÿž\u{a0}\u{ad}®©°·»${C.startPunctuation}${C.endPunctuation}–—´]`,
  String.raw`×[²³]`,
  // Windows-1252 mojibake of Arabic words: four characters required.
  String.raw`[ØÙ][${C.common}${C.currency}${C.bad}${C.numeric}${C.startPunctuation}ŸŠ®°µ»][ØÙ][${C.common}${C.currency}${C.bad}${C.numeric}${C.startPunctuation}ŸŠ®°µ»]`,
  // Windows-1252 starts of three-byte sequences of some South Asian alphabets.
  String.raw`à[²µ¹¼½¾]`,
  // MacRoman mojibake.
  String.raw`√[±∂†≠®™´≤≥¥µø]`,
  String.raw`≈[°¢]`,
  String.raw`‚Ä[ìîïòôúùû†°¢π]`,
  String.raw`‚[âó][àä°ê]`,
  // Windows-1251 mojibake of U+2000-range characters, Latin-1 and Cyrillic.
  String.raw`вЂ`,
  String.raw`[ВГРС][${C.c1}${C.bad}${C.startPunctuation}${C.endPunctuation}${C.currency}°µ][ВГРС]`,
  String.raw`ГўВЂВ[^\n][A-Za-z ]`,
  // Windows-1252 encodings of "à" and "á", and of U+00A0 itself.
  String.raw`Ã[\u{a0}¡]`,
  String.raw`[a-z]${PY_SPACE}?[ÃÂ][ ]`,
  String.raw`^[ÃÂ][ ]`,
  // Â before a character as an encoding of exactly that character.
  String.raw`[a-z.,?!${C.endPunctuation}]Â[ ${C.startPunctuation}${C.endPunctuation}]`,
  // Windows-1253 mojibake of U+2000-range characters, Latin-1 and Greek.
  String.raw`β€[™\u{a0}Ά\u{ad}®°]`,
  String.raw`[ΒΓΞΟ][${C.c1}${C.bad}${C.startPunctuation}${C.endPunctuation}${C.currency}°][ΒΓΞΟ]`,
  // Windows-1257 mojibake of U+2000-range characters.
  String.raw`ā€`,
];

/** ftfy's BADNESS_RE (no flags other than Unicode; not global, so `test` keeps no state). */
export const BADNESS_RE = new RegExp(ALTERNATIVES.join('|'), 'u');

/**
 * ftfy's `is_bad`: whether the text contains at least one sequence that looks like mojibake.
 * @see https://github.com/rspeer/python-ftfy/blob/main/ftfy/badness.py
 */
export function isBad(text: string): boolean {
  return BADNESS_RE.test(text);
}
