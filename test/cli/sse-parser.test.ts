import { describe, expect, it } from 'vitest';
import { parseSse, type SseEvent } from '../../cli/src/sse-parser';

// WHATWG "Server-sent events" §9.2.6 parsing, fed in arbitrary chunks.

async function parseChunks(chunks: (string | Uint8Array)[]): Promise<SseEvent[]> {
  const encoder = new TextEncoder();
  async function* source(): AsyncGenerator<Uint8Array> {
    for (const chunk of chunks) yield typeof chunk === 'string' ? encoder.encode(chunk) : chunk;
  }
  const events: SseEvent[] = [];
  for await (const event of parseSse(source())) events.push(event);
  return events;
}

/** Every way of cutting `text` into two chunks gives the same events as the whole. */
async function expectSplitInvariant(text: string, expected: SseEvent[]): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  for (let cut = 0; cut <= bytes.length; cut++) {
    expect(await parseChunks([bytes.slice(0, cut), bytes.slice(cut)])).toEqual(expected);
  }
}

describe('parseSse', () => {
  it('reads event, data and id fields and dispatches on a blank line', async () => {
    const text = 'id: 1\nevent: image_generation.progress\ndata: {"step":1}\n\nid: 2\nevent: error\ndata: {"x":2}\n\n';
    await expectSplitInvariant(text, [
      { event: 'image_generation.progress', data: '{"step":1}', id: '1' },
      { event: 'error', data: '{"x":2}', id: '2' },
    ]);
  });

  it('handles CRLF and lone CR line ends, including a CRLF split across chunks', async () => {
    const expected = [{ event: 'a', data: 'x', id: null }];
    await expectSplitInvariant('event: a\r\ndata: x\r\n\r\n', expected);
    await expectSplitInvariant('event: a\rdata: x\r\r', expected);
  });

  it('reads the same events from one-byte chunks, a long line included (each part of a line is searched once)', async () => {
    const long = 'b'.repeat(20_000);
    const text = `event: a\r\ndata: ${long}\r\n\r\nevent: b\rdata: y\r\r`;
    const bytes = new TextEncoder().encode(text);
    const chunks = Array.from(bytes, (byte) => Uint8Array.of(byte));
    expect(await parseChunks(chunks)).toEqual([
      { event: 'a', data: long, id: null },
      { event: 'b', data: 'y', id: null },
    ]);
  });

  it('joins several data lines with a newline and defaults the event name to "message"', async () => {
    expect(await parseChunks(['data: first\ndata:second\ndata\n\n'])).toEqual([
      { event: 'message', data: 'first\nsecond\n', id: null },
    ]);
  });

  it('ignores comments, unknown fields and events without data', async () => {
    expect(await parseChunks([': keep-alive\n\nretry: 10\nfoo: bar\n\nevent: empty\n\ndata: ok\n\n'])).toEqual([
      { event: 'message', data: 'ok', id: null },
    ]);
  });

  it('strips only one space after the colon, and a leading byte-order mark', async () => {
    expect(await parseChunks(['\ufeffdata:  two spaces\n\n'])).toEqual([{ event: 'message', data: ' two spaces', id: null }]);
  });

  it('decodes UTF-8 split inside a character', async () => {
    await expectSplitInvariant('data: {"prompt":"红苹果 🍎"}\n\n', [
      { event: 'message', data: '{"prompt":"红苹果 🍎"}', id: null },
    ]);
  });

  it('drops an unterminated last event (the connection broke mid-event)', async () => {
    expect(await parseChunks(['data: whole\n\ndata: half'])).toEqual([{ event: 'message', data: 'whole', id: null }]);
  });

  it('keeps the last id for later events and resets the event name after each dispatch', async () => {
    expect(await parseChunks(['id: 7\nevent: a\ndata: 1\n\ndata: 2\n\n'])).toEqual([
      { event: 'a', data: '1', id: '7' },
      { event: 'message', data: '2', id: '7' },
    ]);
  });

  it('reads a web ReadableStream (what fetch returns)', async () => {
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('event: done\ndata: {}\n\n'));
        controller.close();
      },
    });
    const events: SseEvent[] = [];
    for await (const event of parseSse(stream)) events.push(event);
    expect(events).toEqual([{ event: 'done', data: '{}', id: null }]);
  });
});
