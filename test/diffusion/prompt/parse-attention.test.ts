import { describe, expect, it } from 'vitest';
import { parsePromptAttention, PromptSyntaxError } from '../../../gpu-service/src/diffusion/prompt/parse-attention';

const parse = (text: string) => parsePromptAttention(text).map(({ text: t, weight }) => [t, weight]);

// Expected values are those of AUTOMATIC1111's modules/prompt_parser.py (its docstring examples, and
// the Python function run on the other inputs); floats compare exactly.
describe('parsePromptAttention (AUTOMATIC1111 parse_prompt_attention)', () => {
  it('reproduces the reference docstring examples', () => {
    expect(parse('normal text')).toEqual([['normal text', 1.0]]);
    expect(parse('an (important) word')).toEqual([['an ', 1.0], ['important', 1.1], [' word', 1.0]]);
    expect(parse('(unbalanced')).toEqual([['unbalanced', 1.1]]);
    expect(parse(String.raw`\(literal\]`)).toEqual([['(literal]', 1.0]]);
    expect(parse('(unnecessary)(parens)')).toEqual([['unnecessaryparens', 1.1]]);
    expect(parse('a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).')).toEqual([
      ['a ', 1.0],
      ['house', 1.5730000000000004],
      [' ', 1.1],
      ['on', 1.0],
      [' a ', 1.1],
      ['hill', 0.55],
      [', sun, ', 1.1],
      ['sky', 1.4641000000000006],
      ['.', 1.1],
    ]);
  });

  it('applies explicit weights and square brackets', () => {
    expect(parse('a (very beautiful:1.3) [dog]')).toEqual([
      ['a ', 1.0],
      ['very beautiful', 1.3],
      [' ', 1.0],
      ['dog', 0.9090909090909091],
    ]);
    expect(parse('[[a]]')).toEqual([['a', 0.8264462809917354]]);
    expect(parse('[a (b) c]')).toEqual([['a ', 0.9090909090909091], ['b', 1.0], [' c', 0.9090909090909091]]);
    expect(parse('a ( b : 0.5 ) c')).toEqual([['a ', 1.0], [' b ', 0.5], [' c', 1.0]]);
  });

  it('treats unbalanced and stray brackets as the reference does', () => {
    expect(parse('a (b:1.5')).toEqual([['a ', 1.0], ['b:1.5', 1.1]]);
    expect(parse('ok)')).toEqual([['ok)', 1.0]]);
    expect(parse('(:1.2)')).toEqual([['', 1.0]]);
    expect(parse('')).toEqual([['', 1.0]]);
  });

  it('handles backslash escapes', () => {
    expect(parse(String.raw`a \\ b \\(c\\) \\`)).toEqual([
      ['a \\ b \\', 1.0],
      ['c\\', 1.1],
      [' \\', 1.0],
    ]);
    expect(parse('\\[x\\) y\\')).toEqual([['[x) y', 1.0]]);
  });

  it('turns a whole-word BREAK into a marker of weight -1', () => {
    expect(parse('a BREAK b')).toEqual([['a', 1.0], ['BREAK', -1], ['b', 1.0]]);
    expect(parse('xBREAK y')).toEqual([['xBREAK y', 1.0]]);
    expect(parse('éBREAK y')).toEqual([['éBREAK y', 1.0]]); // Unicode word boundary, as Python's \b
    // Inside brackets the marker's weight is multiplied too, so it no longer counts as a BREAK.
    expect(parse('(red BREAK blue)')).toEqual([['red', 1.1], ['BREAK', -1.1], ['blue', 1.1]]);
  });

  it('reads weights written with non-ASCII decimal digits as Python float() does', () => {
    expect(parse('(a:١.٥)')).toEqual([['a', 1.5]]);
  });

  it('throws PromptSyntaxError where Python float() raises', () => {
    expect(() => parsePromptAttention('(a:1.2.3)')).toThrow(PromptSyntaxError);
    expect(() => parsePromptAttention('(a:.)')).toThrow(/could not convert string to float/);
  });
});
