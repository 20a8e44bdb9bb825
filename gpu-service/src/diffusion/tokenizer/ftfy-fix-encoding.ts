/**
 * ftfy's mojibake repair, `fix_encoding` (ftfy 6.3.1, ftfy/__init__.py `_fix_encoding_one_step_and_explain`,
 * ftfy/fixes.py; Apache-2.0), for text that was UTF-8 decoded as Latin-1 or Windows-1252 — by far the most
 * common case ("cafÃ©" → "café", "itâ€™s" → "it’s", "ðŸ˜€" → "😀", double-encoded "ÃƒÂ©" → "é").
 *
 * Followed step by step: the badness gate (isBad), whole-text re-encoding as Latin-1 then sloppy
 * Windows-1252 with `restore_byte_a0` and `replace_lossy_sequences`, `decode_inconsistent_utf8` for
 * mojibake embedded in correct text, the Latin-1 → Windows-1252 fallback, C1 controls; repeated until
 * nothing changes. Not reproduced: the other single-byte encodings ftfy tries after those two (Windows-1251,
 * 1250, 1253, 1254, 1257, ISO-8859-2, MacRoman, cp437) and the "utf-8-variants" decoder (CESU-8, Java's
 * overlong NUL); text that needs them is left as it is.
 */
import { isBad } from './ftfy-badness';
import { UTF8_CLUES as U } from './ftfy-character-classes';

/** Windows-1252 characters of bytes 0x80–0x9F; "sloppy": the five undefined bytes keep their code point. */
export const SLOPPY_1252_HIGH =
  '\u20ac\x81\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\x8d\u017d\x8f' +
  '\x90\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\x9d\u017e\u0178';

const SLOPPY_1252_ENCODE: ReadonlyMap<number, number> = new Map(
  [...SLOPPY_1252_HIGH].map((ch, i) => [ch.charCodeAt(0), 0x80 + i] as [number, number]),
);

/** Strict Windows-1252 leaves these five bytes undefined. */
const UNDEFINED_1252 = new Set([0x81, 0x8d, 0x8f, 0x90, 0x9d]);

/** ftfy UTF8_DETECTOR_RE: runs of what look like whole UTF-8 sequences in a single-byte decoding. */
const UTF8_DETECTOR_RE = new RegExp(
  `(?<![${U.utf8ContinuationStrict}])(?:[${U.utf8FirstOf2}][${U.utf8Continuation}]|` +
    `[${U.utf8FirstOf3}][${U.utf8Continuation}]{2}|[${U.utf8FirstOf4}][${U.utf8Continuation}]{3})+`,
  'gu',
);

// Byte-level regular expressions run over "binary strings": one character per byte, code points 0–255.
/** ftfy ALTERED_UTF8_RE: UTF-8 sequences whose 0xA0 byte was turned into a space. */
const ALTERED_UTF8_RE =
  /[\xc2\xc3\xc5\xce\xd0\xd9] |[\xe2\xe3] [\x80-\x84\x86-\x9f\xa1-\xbf]|[\xe0-\xe3][\x80-\x84\x86-\x9f\xa1-\xbf] |\xf0 [\x80-\xbf][\x80-\xbf]|\xf0[\x80-\xbf] [\x80-\xbf]|\xf0[\x80-\xbf][\x80-\xbf] /g;
/** ftfy A_GRAVE_WORD_RE: "Ã " that was "à " (a common French word), unless another word follows. */
const A_GRAVE_WORD_RE = /\xc3 (?! |quele|quela|quilo|s )/g;
/** ftfy LOSSY_UTF8_RE: UTF-8 sequences with a byte lost to U+FFFD (0x1A in the sloppy encoding). */
const LOSSY_UTF8_RE =
  /[\xc2-\xdf][\x1a]|[\xc2-\xc3][?]|\xed[\xa0-\xaf][\x1a?]\xed[\xb0-\xbf][\x1a?\x80-\xbf]|\xed[\xa0-\xaf][\x1a?\x80-\xbf]\xed[\xb0-\xbf][\x1a?]|[\xe0-\xef][\x1a?][\x1a\x80-\xbf]|[\xe0-\xef][\x1a\x80-\xbf][\x1a?]|[\xf0-\xf4][\x1a?][\x1a\x80-\xbf][\x1a\x80-\xbf]|[\xf0-\xf4][\x1a\x80-\xbf][\x1a?][\x1a\x80-\xbf]|[\xf0-\xf4][\x1a\x80-\xbf][\x1a\x80-\xbf][\x1a?]|\x1a/g;

const UTF8_DECODER = new TextDecoder('utf-8', { fatal: true });

type SingleByte = 'latin-1' | 'sloppy-windows-1252';

/** `text.encode(encoding)` as a binary string, or undefined when a character does not fit. */
function encodeSingleByte(text: string, encoding: SingleByte): string | undefined {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const cp = text.charCodeAt(i);
    if (encoding === 'latin-1') {
      if (cp > 0xff) return undefined;
      out += text[i];
    } else if (cp === 0x1a) {
      return undefined; // the sloppy codecs use byte 0x1A for U+FFFD
    } else if (cp === 0xfffd) {
      out += '\x1a';
    } else if (cp < 0x80 || (cp >= 0xa0 && cp <= 0xff)) {
      out += text[i];
    } else {
      const byte = SLOPPY_1252_ENCODE.get(cp);
      if (byte === undefined) return undefined;
      out += String.fromCharCode(byte);
    }
  }
  return out;
}

function decodeUtf8(binary: string): string | undefined {
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  try {
    return UTF8_DECODER.decode(bytes);
  } catch {
    return undefined;
  }
}

/** ftfy `restore_byte_a0`. */
function restoreByteA0(binary: string): string {
  return binary.replace(A_GRAVE_WORD_RE, '\xc3\xa0 ').replace(ALTERED_UTF8_RE, (m) => m.replace(/ /g, '\xa0'));
}

/** One step of ftfy's `fix_encoding` (see the module comment). */
function fixEncodingOneStep(text: string): string {
  if (text.length === 0 || /^[\x00-\x7f]*$/.test(text) || !isBad(text)) return text;
  const possible: SingleByte[] = [];
  for (const encoding of ['latin-1', 'sloppy-windows-1252'] as const) {
    let binary = encodeSingleByte(text, encoding);
    if (binary === undefined) continue;
    possible.push(encoding);
    ALTERED_UTF8_RE.lastIndex = 0;
    if (ALTERED_UTF8_RE.test(binary)) binary = restoreByteA0(binary);
    if (encoding === 'sloppy-windows-1252') binary = binary.replace(LOSSY_UTF8_RE, '\xef\xbf\xbd');
    const fixed = decodeUtf8(binary);
    if (fixed !== undefined) return fixed;
  }
  UTF8_DETECTOR_RE.lastIndex = 0;
  if (UTF8_DETECTOR_RE.test(text)) {
    // decode_inconsistent_utf8: fix each embedded run on its own (shorter than the text: no recursion loop).
    const fixed = text.replace(UTF8_DETECTOR_RE, (run) => (run.length < text.length && isBad(run) ? fixEncoding(run) : run));
    if (fixed !== text) return fixed;
  }
  if (possible.includes('latin-1')) {
    // Latin-1 but not Windows-1252 means C1 controls: assume they were meant as Windows-1252.
    const hasC1 = /[\x80-\x9f]/.test(text);
    if (!hasC1) return text;
    if (![...text].some((c) => UNDEFINED_1252.has(c.charCodeAt(0)))) {
      return text.replace(/[\x80-\x9f]/g, (c) => SLOPPY_1252_HIGH[c.charCodeAt(0) - 0x80]);
    }
  }
  // fix_c1_controls
  return text.replace(/[\x80-\x9f]/g, (c) => SLOPPY_1252_HIGH[c.charCodeAt(0) - 0x80]);
}

/**
 * ftfy `fix_encoding`: repair UTF-8 mojibake until the text stops changing. Pure; never throws.
 * @param text any string
 * @returns the repaired text (unchanged when it does not look like mojibake)
 * @see https://github.com/rspeer/python-ftfy/blob/main/ftfy/__init__.py
 */
export function fixEncoding(text: string): string {
  for (;;) {
    const next = fixEncodingOneStep(text);
    if (next === text) return text;
    text = next;
  }
}
