/**
 * Browser module /playground/sse-reader.js: a Server-Sent Events parser over a fetch() body, following
 * the WHATWG HTML "event stream interpretation" rules (event/data/id fields, multi-line data, comments,
 * blank line dispatches). EventSource itself cannot send an Authorization header or a POST body, hence
 * this. Pure: works on any ReadableStream of bytes (also under Node for tests).
 *
 * Kept as text (String.raw, so no backticks or dollar-brace inside) because the Worker serves it as is.
 */
export const SSE_READER_JS = String.raw`// Server-Sent Events over a fetch() response body.

/**
 * Yield each event of a text/event-stream body as {event, data, id}: event defaults to "message",
 * data is the data lines joined by "\n", id is the last id seen (or null).
 * @param body ReadableStream<Uint8Array> (response.body)
 */
export async function* readServerSentEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let eventName = '';
  let dataLines = [];
  let lastId = null;
  // buffer[0, searched) holds no newline: a long line (an image's base64) arriving in many chunks is searched once.
  let searched = 0;
  const take = function* (final) {
    let newline = buffer.indexOf('\n', searched);
    while (newline >= 0 || (final && buffer.length > 0)) {
      let line;
      if (newline >= 0) {
        line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
      } else {
        line = buffer;
        buffer = '';
      }
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (dataLines.length > 0) yield { event: eventName || 'message', data: dataLines.join('\n'), id: lastId };
        eventName = '';
        dataLines = [];
      } else if (!line.startsWith(':')) {
        const colon = line.indexOf(':');
        const field = colon >= 0 ? line.slice(0, colon) : line;
        let value = colon >= 0 ? line.slice(colon + 1) : '';
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'event') eventName = value;
        else if (field === 'data') dataLines.push(value);
        else if (field === 'id') lastId = value;
      }
      newline = buffer.indexOf('\n');
    }
    searched = buffer.length;
  };
  try {
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      buffer += chunk.value;
      yield* take(false);
    }
    yield* take(true);
    // A stream that ends without the final blank line still delivers its last event.
    if (dataLines.length > 0) yield { event: eventName || 'message', data: dataLines.join('\n'), id: lastId };
  } finally {
    reader.releaseLock();
  }
}
`;
