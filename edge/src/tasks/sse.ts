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

/** Options of {@link parseSse}. */
export interface ParseSseOptions {
  /**
   * Whether `message` is the stream's last one (the sender ends the stream right after it). When the consumer
   * stops right after such a message, the rest of the stream (its end, already on its way) is read in the
   * background instead of cancelled: the answer is not held up, and the HTTP connection stays reusable
   * (a cancelled response body closes it, so the next request would open a new one).
   */
  isLast?: (message: SseMessage) => boolean;
}

/**
 * Read SSE messages from a byte stream until it ends. When the consumer stops early the stream is released
 * without waiting: cancelled, or drained in the background after a last message (ParseSseOptions.isLast).
 */
export async function* parseSse(body: ReadableStream<Uint8Array>, options: ParseSseOptions = {}): AsyncGenerator<SseMessage> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  // Pieces of the line being read: only new text is searched for line ends, so a long line (the `done`
  // event's base64 images) arriving in many chunks costs its length once, not once per chunk.
  let partial: string[] = [];
  // The last text ended in a CR (a line end): a LF that starts the next one is the rest of that CRLF.
  let afterCr = false;
  let event = '';
  let data: string[] = [];
  let id: string | null = null;
  let sawData = false;
  let ended = false;
  // Set while the consumer holds a last message: stopping there drains instead of cancelling.
  let afterLast = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      // stream: true keeps a multi-byte character split across chunks for the next read.
      const chunk = done ? decoder.decode() : decoder.decode(value, { stream: true });
      let start = afterCr && chunk.startsWith('\n') ? 1 : 0;
      if (chunk.length > 0) afterCr = false;
      const lineEnd = /\r\n|\n|\r/g;
      lineEnd.lastIndex = start;
      let match: RegExpExecArray | null;
      while ((match = lineEnd.exec(chunk)) !== null) {
        const tail = chunk.slice(start, match.index);
        const line = partial.length === 0 ? tail : partial.join('') + tail;
        partial = [];
        start = match.index + match[0].length;
        if (match[0] === '\r' && start === chunk.length) afterCr = true;
        if (line === '') {
          if (sawData) {
            const message: SseMessage = { event: event || 'message', data: data.join('\n'), id };
            afterLast = options.isLast?.(message) ?? false;
            yield message;
            afterLast = false;
          }
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
      if (start < chunk.length) partial.push(chunk.slice(start));
      if (done) {
        ended = true;
        break;
      }
    }
  } finally {
    // Stopping early (break/return in the consumer) must release the upstream request, without holding up
    // the consumer: cancel it (the sender sees the client go), or after a last message read its end.
    if (!ended) void (afterLast ? drain(reader) : reader.cancel()).catch(() => undefined);
  }
}

/** Read a stream to its end, discarding what arrives. */
async function drain(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  for (;;) if ((await reader.read()).done) return;
}

/** One SSE frame: `id:` (when given), `event:` and the JSON of `data` on one `data:` line. */
export function formatSse(event: string, data: unknown, id?: string | number): string {
  const idLine = id === undefined ? '' : `id: ${id}\n`;
  return `${idLine}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** A comment frame that keeps idle connections (and proxies) open. */
export const SSE_KEEP_ALIVE = ': keep-alive\n\n';
