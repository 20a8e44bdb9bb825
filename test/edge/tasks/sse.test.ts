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
