/**
 * Test helper: a Server-Sent Events reader for the GPU service's job streams (real HTTP).
 */

/** One parsed SSE event. */
export interface SseEvent {
  id: number;
  event: string;
  data: any;
}

/** Parse an SSE body into events (comments and incomplete trailing blocks ignored). */
export function parseSse(text: string): SseEvent[] {
  return text
    .split('\n\n')
    .map((block) => {
      const lines = block.split('\n');
      const get = (k: string) => lines.find((l) => l.startsWith(`${k}: `))?.slice(k.length + 2);
      const event = get('event');
      const data = get('data');
      return event && data !== undefined ? { id: Number(get('id')), event, data: JSON.parse(data) } : null;
    })
    .filter((e): e is SseEvent => e !== null);
}

/** A job stream being read: events so far, and helpers to wait for more. */
export class JobStream {
  private text = '';
  private ended = false;
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();

  constructor(readonly response: Response) {
    if (!response.body) throw new Error(`no body (HTTP ${response.status})`);
    this.reader = response.body.getReader();
  }

  get events(): SseEvent[] {
    // Only complete blocks: the text up to the last blank line.
    const cut = this.text.lastIndexOf('\n\n');
    return cut < 0 ? [] : parseSse(this.text.slice(0, cut + 2));
  }

  /** Read until `predicate(events)` holds. @throws when the stream ends first. */
  async until(predicate: (events: SseEvent[]) => boolean): Promise<SseEvent[]> {
    while (!predicate(this.events)) {
      if (this.ended) throw new Error(`stream ended first: ${this.text.slice(0, 2000)}`);
      const { value, done } = await this.reader.read();
      if (done) this.ended = true;
      else this.text += this.decoder.decode(value, { stream: true });
    }
    return this.events;
  }

  /** Read to the end. */
  async all(): Promise<SseEvent[]> {
    while (!this.ended) {
      const { value, done } = await this.reader.read();
      if (done) this.ended = true;
      else this.text += this.decoder.decode(value, { stream: true });
    }
    return this.events;
  }

  /** The final event (done or error), reading to the end. */
  async final(): Promise<SseEvent> {
    const events = await this.all();
    const last = events.at(-1);
    if (!last || (last.event !== 'done' && last.event !== 'error')) throw new Error(`no final event: ${JSON.stringify(events.map((e) => e.event))}`);
    return last;
  }
}

/** POST a job to `base` asking for an event stream. */
export async function streamJob(base: string, token: string, job: unknown): Promise<JobStream> {
  const res = await fetch(`${base}/v1/jobs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify(job),
  });
  if (!(res.headers.get('content-type') ?? '').includes('text/event-stream')) {
    throw new Error(`expected an event stream, got HTTP ${res.status}: ${await res.text()}`);
  }
  return new JobStream(res);
}
