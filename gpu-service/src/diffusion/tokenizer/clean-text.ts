/**
 * OpenAI CLIP's prompt clean-up (clip/simple_tokenizer.py): `whitespace_clean(basic_clean(text)).lower()`,
 * where `basic_clean` = `ftfy.fix_text`, then `html.unescape` twice, then `strip()`, and `whitespace_clean`
 * collapses every run of whitespace to one space and strips again.
 */
import { fixText } from './fix-text';
import { pythonHtmlUnescape } from './python-html-unescape';

/**
 * What `\s` matches in the `regex` module that simple_tokenizer imports as `re`: the Unicode White_Space
 * property (unlike JavaScript's `\s`, it includes U+0085 and excludes U+FEFF).
 */
export const CLIP_WHITESPACE = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

/** Python's `str.strip()` strips `str.isspace()` characters: White_Space plus U+001C–U+001F. */
const PY_STRIP_RE = /^[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;

const WHITESPACE_RUN_RE = new RegExp(`[${CLIP_WHITESPACE}]+`, 'g');

/**
 * Clean a prompt exactly as CLIP's reference tokenizer does before splitting it into words.
 * Pure; never throws.
 * @param text raw prompt text
 * @returns repaired (see fixText), HTML-unescaped twice, whitespace-collapsed, stripped, lower-cased text
 * @see https://github.com/openai/CLIP/blob/main/clip/simple_tokenizer.py
 */
export function cleanClipText(text: string): string {
  const basic = pythonHtmlUnescape(pythonHtmlUnescape(fixText(text))).replace(PY_STRIP_RE, '');
  return basic.replace(WHITESPACE_RUN_RE, ' ').replace(PY_STRIP_RE, '').toLowerCase();
}
