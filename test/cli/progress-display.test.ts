import { describe, expect, it } from 'vitest';
import { createProgressDisplay, formatEta } from '../../cli/src/progress-display';

/** Enough of a terminal WriteStream for cli-progress: isTTY, columns and write (readline uses write too). */
function fakeTerminal(isTTY: boolean): { stream: NodeJS.WriteStream; output: () => string } {
  let text = '';
  const stream = {
    isTTY,
    columns: 120,
    write(chunk: string | Uint8Array, ...rest: unknown[]) {
      text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      const callback = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined;
      callback?.();
      return true;
    },
    on() {
      return stream;
    },
    removeListener() {
      return stream;
    },
  };
  return { stream: stream as unknown as NodeJS.WriteStream, output: () => text };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('formatEta', () => {
  it.each([
    [null, '--'],
    [-1, '--'],
    [0, '0s'],
    [12.4, '12s'],
    [59.6, '1m00s'],
    [65, '1m05s'],
    [3600 + 180, '1h03m'],
  ])('%s s → %s', (seconds, text) => {
    expect(formatEta(seconds)).toBe(text);
  });
});

describe('createProgressDisplay', () => {
  it('draws the queue position, then step/total with the server ETA, on a terminal', async () => {
    const { stream, output } = fakeTerminal(true);
    const display = createProgressDisplay(stream);
    display.update({ step: 0, total: 20, etaSeconds: 30, queuePosition: 2 });
    await pause(150);
    display.update({ step: 12, total: 20, etaSeconds: 3.2, queuePosition: null });
    await pause(150);
    display.stop();
    display.stop();
    expect(output()).toContain('0/20 steps | queued, position 2');
    expect(output()).toContain('12/20 steps | ETA 3s');
  });

  it('draws nothing when stderr is not a terminal (pipes, CI)', async () => {
    const { stream, output } = fakeTerminal(false);
    const display = createProgressDisplay(stream);
    display.update({ step: 1, total: 2, etaSeconds: 1, queuePosition: null });
    display.stop();
    expect(output()).toBe('');
  });
});
