import { describe, expect, it } from 'vitest';
import { PartialImagePicker } from '../../../edge/src/tasks/partial-image-picker';
import { formatSse, parseSse } from '../../../edge/src/tasks/sse';

/** A byte stream delivering `chunks` one by one (to cut lines and CRLFs anywhere). */
function chunked(chunks: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      controller.close();
    },
  });
}

async function all(chunks: string[]) {
  const out = [];
  for await (const message of parseSse(chunked(chunks))) out.push(message);
  return out;
}

describe('parseSse (WHATWG event-stream rules)', () => {
  it('reads ids, names, multi-line data, comments and the three line endings, across chunk boundaries', async () => {
    const messages = await all([': hello\r\n', 'id: 7\r', '\nevent: step\ndata: {"step"', ':1}\n\n', 'data: a\ndata:b\r\rdata: only\n\n']);
    expect(messages).toEqual([
      { event: 'step', data: '{"step":1}', id: '7' },
      { event: 'message', data: 'a\nb', id: null },
      { event: 'message', data: 'only', id: null },
    ]);
  });

  it('reads a long line cut into many chunks, and a CR ending one chunk whether or not a LF starts the next', async () => {
    const long = 'x'.repeat(50_000);
    const frame = `event: done\ndata: ${long}\n\n`;
    const pieces = [];
    for (let i = 0; i < frame.length; i += 7) pieces.push(frame.slice(i, i + 7));
    expect(await all(pieces)).toEqual([{ event: 'done', data: long, id: null }]);
    expect(await all(['data: a\r', '\r', 'data: b\r', '\n\r', '\ndata: c\r', 'data: d\r\r'])).toEqual([
      { event: 'message', data: 'a', id: null },
      { event: 'message', data: 'b', id: null },
      { event: 'message', data: 'c\nd', id: null },
    ]);
  });

  it('keeps a multi-byte character that is split between two chunks', async () => {
    const bytes = new TextEncoder().encode('data: "café ☕"\n\n');
    const cut = bytes.indexOf(0xe2) + 1; // inside the 3-byte ☕
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.subarray(0, cut));
        controller.enqueue(bytes.subarray(cut));
        controller.close();
      },
    });
    const messages = [];
    for await (const message of parseSse(body)) messages.push(message.data);
    expect(messages).toEqual(['"café ☕"']);
  });

  it('drops an event without data and an unterminated last event', async () => {
    expect(await all(['event: ping\n\n', 'data: unfinished'])).toEqual([]);
  });

  /** A stream that sends `first` at once and `rest` only when asked to, recording whether it was cancelled or read to its end. */
  function gatedSource(first: string, rest: string) {
    const encoder = new TextEncoder();
    const seen = { cancelled: false, restRead: false };
    let release = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    let pulls = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (pulls++ === 0) return controller.enqueue(encoder.encode(first));
        await gate;
        controller.enqueue(encoder.encode(rest));
        seen.restRead = true;
        controller.close();
      },
      cancel() {
        seen.cancelled = true;
      },
    });
    return { body, seen, release };
  }

  it('a consumer that stops after a last message (isLast) is not held up; the stream\'s end is read, not cancelled', async () => {
    const source = gatedSource('event: done\ndata: {}\n\n', ': end\n\n');
    for await (const message of parseSse(source.body, { isLast: (m) => m.event === 'done' })) {
      expect(message.event).toBe('done');
      break;
    }
    // Back here while the stream's end has not arrived: nothing waited for it.
    expect(source.seen).toEqual({ cancelled: false, restRead: false });
    source.release();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(source.seen).toEqual({ cancelled: false, restRead: true });
  });

  it('a consumer that stops after any other message cancels the stream (the sender sees the client go)', async () => {
    const source = gatedSource('event: step\ndata: {}\n\n', 'event: done\ndata: {}\n\n');
    for await (const message of parseSse(source.body, { isLast: (m) => m.event === 'done' })) {
      expect(message.event).toBe('step');
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(source.seen.cancelled).toBe(true);
    source.release();
  });

  it('formatSse round-trips', async () => {
    const frame = formatSse('task.progress', { step: 2, text: 'line\nbreak' }, 3);
    const [message] = await all([frame]);
    expect(message).toEqual({ event: 'task.progress', id: '3', data: JSON.stringify({ step: 2, text: 'line\nbreak' }) });
  });
});

describe('PartialImagePicker', () => {
  const pick = (limit: number | null, total: number, steps: number[]) => {
    const picker = new PartialImagePicker(limit);
    return steps.map((step) => picker.take(step, total));
  };

  it('k = 2 over 10 steps keeps the first previews at or after steps 10/3 and 20/3', () => {
    expect(pick(2, 10, [1, 2, 3, 4, 5, 6, 7, 8, 9])).toEqual([null, null, null, 0, null, null, 1, null, null]);
  });

  it('k = 3 over 20 steps with a preview every 2 steps: steps 6, 10, 16', () => {
    const steps = [2, 4, 6, 8, 10, 12, 14, 16, 18];
    const taken = pick(3, 20, steps);
    expect(steps.filter((_, i) => taken[i] !== null)).toEqual([6, 10, 16]);
  });

  it('k = 0 keeps none; no limit keeps every preview; unknown total takes the first k', () => {
    expect(pick(0, 10, [3, 6, 9])).toEqual([null, null, null]);
    expect(pick(null, 10, [1, 2, 3])).toEqual([0, 1, 2]);
    const picker = new PartialImagePicker(2);
    expect([picker.take(null, null), picker.take(null, null), picker.take(null, null)]).toEqual([0, 1, null]);
  });
});
