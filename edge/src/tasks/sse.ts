/**
 * Server-Sent Events, both ways, following the WHATWG HTML "event stream" interpretation rules
 * (html.spec.whatwg.org, §9.2.6): lines end in CRLF, LF or CR; `:` starts a comment; fields
 * `event`, `data` (joined with "\n"), `id`; a blank line dispatches; a message without data is
 * dropped; a missing event name is "message".
 */

/** One dispatched event. `id` is the `id:` field of this event (null when it had none). */
export interface SseMessage {
  event: string;
  data: string;
  id: string | null;
}

/** Read SSE messages from a byte stream until it ends. Releases the stream when the consumer stops early. */
export async function* parseSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let event = '';
  let data: string[] = [];
  let id: string | null = null;
  let sawData = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      // stream: true keeps a multi-byte character split across chunks for the next read.
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      // Split complete lines; a trailing CR may be half of a CRLF, so keep it until more text arrives.
      let match: RegExpExecArray | null;
      const lineEnd = /\r\n|\n|\r(?!$)/g;
      let start = 0;
      while ((match = lineEnd.exec(buffer)) !== null) {
        const line = buffer.slice(start, match.index);
        start = match.index + match[0].length;
        if (line === '') {
          if (sawData) yield { event: event || 'message', data: data.join('\n'), id };
          event = '';
          data = [];
          id = null;
          sawData = false;
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? '' : line.slice(colon + 1);
        if (text.startsWith(' ')) text = text.slice(1);
        if (field === 'event') event = text;
        else if (field === 'data') {
          data.push(text);
          sawData = true;
        } else if (field === 'id' && !text.includes('\0')) id = text;
      }
      buffer = buffer.slice(start);
      if (done) break;
    }
  } finally {
    // Stopping early (break/return in the consumer) must cancel the upstream request.
    await reader.cancel().catch(() => undefined);
  }
}

/** One SSE frame: `id:` (when given), `event:` and the JSON of `data` on one `data:` line. */
export function formatSse(event: string, data: unknown, id?: string | number): string {
  const idLine = id === undefined ? '' : `id: ${id}\n`;
  return `${idLine}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** A comment frame that keeps idle connections (and proxies) open. */
export const SSE_KEEP_ALIVE = ': keep-alive\n\n';
