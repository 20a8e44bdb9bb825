import { describe, expect, it } from 'vitest';
import { promptSlug, SLUG_MAX_LENGTH } from '../../cli/src/prompt-slug';

describe('promptSlug', () => {
  it.each([
    ['a red apple', 'red-apple'],
    ['A Red Apple, on the table!', 'red-apple-table'],
    ['Crème brûlée', 'creme-brulee'],
    ['  lots   of\tspace  ', 'lots-space'],
    ['the', 'the'],
    ['红苹果', 'image'],
    ['', 'image'],
    ['one two three four five six seven eight', 'one-two-three-four-five-six'],
    ['../../etc/passwd', 'etc-passwd'],
  ])('%j → %j', (prompt, slug) => {
    expect(promptSlug(prompt)).toBe(slug);
  });

  it(`never exceeds ${SLUG_MAX_LENGTH} characters, even for one long word`, () => {
    expect(promptSlug('x'.repeat(200))).toBe('x'.repeat(SLUG_MAX_LENGTH));
    expect(promptSlug('abcdefghijklmnopqrstuvwxyz '.repeat(5)).length).toBeLessThanOrEqual(SLUG_MAX_LENGTH);
  });
});
