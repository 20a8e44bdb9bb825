/** One dispatched Server-Sent Event. */
export interface SseEvent {
  /** The `event:` field, or "message" when the server sent none. */
  event: string;
  /** The `data:` lines joined with "\n" (a JSON document for this API). */
  data: string;
  /** The last `id:` seen on the stream, or null. */
  id: string | null;
}

/**
 * Parse a `text/event-stream` body into events, following the WHATWG HTML "Server-sent events"
 * parsing rules (§9.2.6): UTF-8, lines end in CRLF, LF or CR, `field: value` with one optional
 * space after the colon, lines starting with ":" are comments, a blank line dispatches the event,
 * an event with no data is dropped, and an unterminated final event is dropped.
 *
 * Chunk boundaries may fall anywhere (inside a line, between CR and LF, inside a UTF-8
 * sequence). Throws whatever the underlying stream throws (e.g. an AbortError).
 */
export async function* parseSse(body: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder('utf-8');
  let buffer = '';
  let first = true;
  let eventType = '';
  let data: string[] = [];
  let lastId: string | null = null;

  // buffer[0, searched) holds no line end: a long line (an image's base64) arriving in many chunks is searched once.
  let searched = 0;
  function* takeLines(final: boolean): Generator<string> {
    for (;;) {
      const lineEnd = /\r\n|\r|\n/g;
      lineEnd.lastIndex = searched;
      const match = lineEnd.exec(buffer);
      if (!match) {
        searched = buffer.length;
        break;
      }
      // A CR at the very end of the buffer may be the first half of a CRLF split across chunks.
      if (match[0] === '\r' && match.index === buffer.length - 1 && !final) {
        searched = match.index;
        break;
      }
      yield buffer.slice(0, match.index);
      buffer = buffer.slice(match.index + match[0].length);
      searched = 0;
    }
  }

  function* handle(line: string): Generator<SseEvent> {
    if (line === '') {
      if (data.length > 0) yield { event: eventType || 'message', data: data.join('\n'), id: lastId };
      eventType = '';
      data = [];
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') eventType = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id' && !value.includes('\0')) lastId = value;
    // `retry:` and unknown fields are ignored: the CLI does not reconnect.
  }

  for await (const chunk of chunksOf(body)) {
    buffer += decoder.decode(chunk, { stream: true });
    if (first && buffer.length > 0) {
      if (buffer.charCodeAt(0) === 0xfeff) buffer = buffer.slice(1);
      first = false;
    }
    for (const line of takeLines(false)) yield* handle(line);
  }
  buffer += decoder.decode();
  for (const line of takeLines(true)) yield* handle(line);
}

/** Iterate a web ReadableStream (fetch's body) or any async iterable of byte chunks. */
async function* chunksOf(body: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  if (!('getReader' in body)) {
    yield* body;
    return;
  }
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}
