/**
 * AUTOMATIC1111's prompt emphasis syntax, `parse_prompt_attention` (stable-diffusion-webui,
 * modules/prompt_parser.py), reproduced exactly:
 *
 * - `(text)` multiplies the weight of text by 1.1, `[text]` by 1/1.1; nesting multiplies;
 * - `(text:1.3)` multiplies by 1.3 (the number is `[+-]?[.\d]+`, spaces allowed around it);
 * - `\(` `\)` `\[` `\]` `\\` are literal characters; a lone `\` is dropped;
 * - brackets left open at the end apply their multiplier to everything after them; a closing bracket
 *   with nothing open is literal text;
 * - `BREAK` (a whole word, upper case) becomes the marker `{ text: 'BREAK', weight: -1 }`, which forces a
 *   new 75-token chunk;
 * - adjacent pieces with exactly equal weights are merged; an empty prompt is `[{ text: '', weight: 1 }]`.
 *
 * Example (from the reference's docstring): 'a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).' →
 * [a , 1] [house, 1.5730000000000004] [ , 1.1] [on, 1] [ a , 1.1] [hill, 0.55] [, sun, , 1.1]
 * [sky, 1.4641000000000006] [., 1.1].
 */

/** A piece of prompt text and its emphasis multiplier (BREAK markers have text 'BREAK', weight -1). */
export interface WeightedText {
  text: string;
  weight: number;
}

/** A weight such as "1.2.3" that Python's float() rejects (the reference raises ValueError). */
export class PromptSyntaxError extends Error {
  override readonly name = 'PromptSyntaxError';
}

/** Python `re`'s `\s` for str patterns (str.isspace characters). */
const PY_SPACE = String.raw`[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]`;
/** Python `re`'s `\w`: letters, digits/numerics and "_". */
const PY_WORD = String.raw`[\p{L}\p{N}_]`;

/** modules/prompt_parser.py `re_attention` (`\d` is any Unicode decimal digit, as in Python). */
const RE_ATTENTION = new RegExp(
  String.raw`\\\(|\\\)|\\\[|\\\]|\\\\|\\|\(|\[|:${PY_SPACE}*([+-]?[.\p{Nd}]+)${PY_SPACE}*\)|\)|\]|[^\\()[\]:]+|:`,
  'gu',
);

/** modules/prompt_parser.py `re_break`: `\s*\bBREAK\b\s*`, with Python's Unicode word boundary. */
const RE_BREAK = new RegExp(String.raw`${PY_SPACE}*(?<!${PY_WORD})BREAK(?!${PY_WORD})${PY_SPACE}*`, 'u');

/** Python float() of a `[+-]?[.\d]+` string, with Unicode decimal digits read by their value. */
function parseWeight(text: string): number {
  let ascii = '';
  for (const ch of text) {
    if (/\p{Nd}/u.test(ch)) {
      // Unicode encodes decimal digits in contiguous blocks of whole 0–9 runs: count from the block start.
      const cp = ch.codePointAt(0)!;
      let start = cp;
      while (/\p{Nd}/u.test(String.fromCodePoint(start - 1))) start--;
      ascii += String((cp - start) % 10);
    } else {
      ascii += ch;
    }
  }
  if (!/^[+-]?(?:\d+\.?\d*|\.\d+)$/.test(ascii)) {
    throw new PromptSyntaxError(`could not convert string to float: '${text}' (in a "(text:weight)" group)`);
  }
  return Number(ascii);
}

/**
 * Split a prompt into weighted pieces, exactly as AUTOMATIC1111's `parse_prompt_attention`.
 * @param text the prompt
 * @returns pieces in order; weights multiply as in the reference (same float operations, same order)
 * @throws PromptSyntaxError when a `(text:weight)` weight is not a number Python can parse (e.g. "1.2.3")
 * @see https://github.com/AUTOMATIC1111/stable-diffusion-webui/blob/master/modules/prompt_parser.py
 */
export function parsePromptAttention(text: string): WeightedText[] {
  const res: WeightedText[] = [];
  const roundBrackets: number[] = [];
  const squareBrackets: number[] = [];
  const ROUND_BRACKET_MULTIPLIER = 1.1;
  const SQUARE_BRACKET_MULTIPLIER = 1 / 1.1;

  const multiplyRange = (start: number, multiplier: number) => {
    for (let p = start; p < res.length; p++) res[p].weight *= multiplier;
  };

  for (const m of text.matchAll(RE_ATTENTION)) {
    const piece = m[0];
    const weight = m[1];
    if (piece.startsWith('\\')) {
      res.push({ text: piece.slice(1), weight: 1.0 });
    } else if (piece === '(') {
      roundBrackets.push(res.length);
    } else if (piece === '[') {
      squareBrackets.push(res.length);
    } else if (weight !== undefined && roundBrackets.length > 0) {
      multiplyRange(roundBrackets.pop()!, parseWeight(weight));
    } else if (piece === ')' && roundBrackets.length > 0) {
      multiplyRange(roundBrackets.pop()!, ROUND_BRACKET_MULTIPLIER);
    } else if (piece === ']' && squareBrackets.length > 0) {
      multiplyRange(squareBrackets.pop()!, SQUARE_BRACKET_MULTIPLIER);
    } else {
      piece.split(RE_BREAK).forEach((part, i) => {
        if (i > 0) res.push({ text: 'BREAK', weight: -1 });
        res.push({ text: part, weight: 1.0 });
      });
    }
  }

  for (const pos of roundBrackets) multiplyRange(pos, ROUND_BRACKET_MULTIPLIER);
  for (const pos of squareBrackets) multiplyRange(pos, SQUARE_BRACKET_MULTIPLIER);

  if (res.length === 0) return [{ text: '', weight: 1.0 }];

  // Merge runs of identical weights.
  let i = 0;
  while (i + 1 < res.length) {
    if (res[i].weight === res[i + 1].weight) {
      res[i].text += res[i + 1].text;
      res.splice(i + 1, 1);
    } else {
      i++;
    }
  }
  return res;
}
