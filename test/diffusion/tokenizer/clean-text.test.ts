import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cleanClipText } from '../../../gpu-service/src/diffusion/tokenizer/clean-text';
import { loadClipTokenizer } from '../../../gpu-service/src/diffusion/tokenizer/clip-tokenizer';
import { fixText } from '../../../gpu-service/src/diffusion/tokenizer/fix-text';
import { pythonHtmlUnescape } from '../../../gpu-service/src/diffusion/tokenizer/python-html-unescape';

const FIXTURES = path.resolve(__dirname, '../../../..', 'shared', 'fixtures', 'clip-tokenizer');
const hasShared = existsSync(path.join(FIXTURES, 'vocab.json'));
if (!hasShared) console.warn(`skipping CLIP clean-up id checks: ${FIXTURES} is absent (../shared beside the repo)`);

/**
 * [input, cleaned text, ids without bos/eos], produced by OpenAI's clip/simple_tokenizer.py (ftfy 6.3.1,
 * Python 3.11 html.unescape, `regex`) over the CLIP ViT-L/14 vocabulary of ../shared/fixtures/clip-tokenizer.
 */
const REFERENCE: ReadonlyArray<readonly [string, string, number[]]> = [
  ["caf\u00c3\u00a9 cr\u00c3\u00a8me", "caf\u00e9 cr\u00e8me", [15304, 1075, 12138, 614]],
  ["it\u00e2\u20ac\u2122s a \u00e2\u20ac\u0153test\u00e2\u20ac\u009d", "it's a \"test\"", [585, 568, 320, 257, 1628, 257]],
  ["\u00c3\u0192\u00c2\u00a9t\u00c3\u0192\u00c2\u00a9", "\u00e9t\u00e9", [3459, 39694]],
  ["\u00f0\u0178\u02dc\u20ac smile", "\ud83d\ude00 smile", [7334, 3490]],
  ["voil\u00c3 le chat", "voil\u00e0 le chat", [947, 543, 21259, 579, 2402]],
  ["da\u00df\u2026", "da\u00df\u2026", [925, 127, 509, 959]],
  ["\u00d8\u00a7\u00d9\u201e\u00d8\u00b9\u00d8\u00b1\u00d8\u00a8\u00d9\u0160\u00d8\u00a9", "\u0627\u0644\u0639\u0631\u0628\u064a\u0629", [12973, 18843, 10948, 16378, 12046, 20915]],
  ["&amp;lt;b&amp;gt; bold", "<b> bold", [283, 321, 285, 8911]],
  ["&EACUTE;T&EACUTE;", "\u00e9t\u00e9", [3459, 39694]],
  ["<b>&amp;amp;</b>", "<b>&</b>", [283, 321, 29, 5, 34308, 321, 285]],
  ["&notit; &copy2020", "\u00acit; \u00a92020", [126, 361, 585, 282, 5811, 273, 271, 273, 271]],
  ["&#x2019;s &#150; &#0;", "'s \u2013 \ufffd", [568, 1224, 39802]],
  ["\u201cHello\u201d \u2018World\u2019", "\"hello\" 'world'", [257, 3306, 257, 262, 1002, 262]],
  ["\uff2c\uff2f\uff35\uff24\u3000\uff2e\uff2f\uff29\uff33\uff25\uff33", "loud noises", [7464, 31575]],
  ["\ufb02ubberi\ufb01c", "flubberific", [3698, 65, 867, 72, 2059]],
  ["a\u00a0b\u3000c\u0085d\te\n\nf", "a b c\u2026d e f", [320, 321, 322, 959, 323, 324, 325]],
  ["\u001b[31mred\u001b[0m apple", "red apple", [736, 3055]],
  ["a\u0000b\ufeffc\u200bd", "abc\u200bd", [5334, 9844, 323]],
  ["e\u0301clair", "\u00e9clair", [3459, 14039]],
  ["\u0130STANBUL \u03a3\u0391\u03a3", "i\u0307stanbul \u03c3\u03b1\u03c2", [328, 16384, 11231, 139, 225, 138, 109, 139, 480]],
  ["<|endoftext|> <|\u017ftartoftext|>", "<|endoftext|> <|\u017ftartoftext|>", [49407, 27, 91, 129, 123, 2002, 6659, 18169, 91, 285]],
  ["a\u0345b", "a\u0345b", [320, 321]],
  ["it'\u017f", "it'\u017f", [585, 6, 129, 379]],
  ["  Leading and trailing  ", "leading and trailing", [3833, 537, 37427]],
];

describe('cleanClipText reproduces simple_tokenizer clean-up (ftfy + html.unescape ×2 + whitespace + lower)', () => {
  it.each(REFERENCE.map(([input, clean]) => [JSON.stringify(input), input, clean] as const))('%s', (_name, input, clean) => {
    expect(cleanClipText(input)).toBe(clean);
  });
});

describe.skipIf(!hasShared)('tokenizer ids after clean-up match the reference (../shared fixtures)', () => {
  it('every clean-up case gives the reference ids', async () => {
    const tokenizer = await loadClipTokenizer(FIXTURES);
    for (const [input, , ids] of REFERENCE) expect(tokenizer.encode(input), JSON.stringify(input)).toEqual(ids);
  });
});

describe('fixText (ftfy.fix_text subset) and pythonHtmlUnescape', () => {
  it('repairs UTF-8 read as Windows-1252 but leaves correct text alone', () => {
    expect(fixText('naÃ¯ve cafÃ©')).toBe('naïve café');
    expect(fixText('I â™¥ NY')).toBe('I ♥ NY');
    expect(fixText('daß… naïve Ελληνικά')).toBe('daß… naïve Ελληνικά');
    expect(fixText('ESPAÑA¿')).toBe('ESPAÑA¿');
  });

  it('stops unescaping HTML from the first line that contains "<"', () => {
    expect(fixText('&amp;\n<b>&amp;</b>\n&amp;')).toBe('&\n<b>&amp;</b>\n&amp;');
  });

  it('decodes references like Python html.unescape', () => {
    expect(pythonHtmlUnescape('&amp &ampx &notit; &copy2020 &lang;')).toBe('& &x ¬it; ©2020 ⟨');
    expect(pythonHtmlUnescape('&#65 &#x41; &#x80; &#0; &#xD800; &#x110000; &#1; &#xFFFE;|')).toBe('A A € \ufffd \ufffd \ufffd  |');
    expect(pythonHtmlUnescape('&bogus; & amp; &#;')).toBe('&bogus; & amp; &#;');
  });
});
