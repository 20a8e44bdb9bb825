import { describe, expect, it } from 'vitest';
import { defaultOutputName } from '../../cli/src/output-name';

describe('defaultOutputName', () => {
  const now = new Date(2026, 0, 2, 3, 4, 5);

  it('is <slug>-<seed>.<ext>', () => {
    expect(defaultOutputName('a red apple', 42, 'png', now)).toBe('red-apple-42.png');
    expect(defaultOutputName('a red apple', 0, 'jpeg', now)).toBe('red-apple-0.jpg');
    expect(defaultOutputName('a red apple', 7, 'webp', now)).toBe('red-apple-7.webp');
  });

  it('uses the local time when the server reported no seed', () => {
    expect(defaultOutputName('blue sky', null, 'png', now)).toBe('blue-sky-20260102-030405.png');
  });
});
