import { formatSse, SSE_KEEP_ALIVE } from './sse';

/** Interval of keep-alive comments on an idle stream (proxies close idle connections after ~100 s). */
export const SSE_KEEP_ALIVE_MS = 15_000;

/** Response headers of every event stream the edge sends. */
export const SSE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
};

/**
 * The writing end of an event-stream response. Writes never throw and never wait for the client:
 * once the client has gone (its read side was cancelled) they are dropped, so the work behind the
 * stream (a generation) goes on undisturbed. A keep-alive comment is sent every SSE_KEEP_ALIVE_MS
 * until {@link close}.
 */
export class SseWriter {
  /** The body to put in the Response. */
  readonly readable: ReadableStream<Uint8Array>;
  private readonly writer: WritableStreamDefaultWriter<Uint8Array>;
  private readonly encoder = new TextEncoder();
  private readonly keepAlive: ReturnType<typeof setInterval>;
  private gone = false;
  private closed = false;
  private readonly goneController = new AbortController();

  constructor(keepAliveMs = SSE_KEEP_ALIVE_MS) {
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    this.readable = readable;
    this.writer = writable.getWriter();
    // Cancelling the readable side (client disconnect) errors the writable side.
    this.writer.closed.catch(() => this.markGone());
    this.keepAlive = setInterval(() => this.write(SSE_KEEP_ALIVE), keepAliveMs);
  }

  /** Aborted once the client has gone: pass it to upstream fetches so they stop with the client. */
  get goneSignal(): AbortSignal {
    return this.goneController.signal;
  }

  /** Whether the client has stopped reading. */
  get clientGone(): boolean {
    return this.gone;
  }

  /** Send one event (data as JSON). */
  send(event: string, data: unknown, id?: string | number): void {
    this.write(formatSse(event, data, id));
  }

  /** End the stream (idempotent). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepAlive);
    if (!this.gone) this.writer.close().catch(() => this.markGone());
  }

  private markGone(): void {
    if (this.gone) return;
    this.gone = true;
    clearInterval(this.keepAlive);
    this.goneController.abort();
  }

  private write(text: string): void {
    if (this.gone || this.closed) return;
    this.writer.write(this.encoder.encode(text)).catch(() => this.markGone());
  }
}
