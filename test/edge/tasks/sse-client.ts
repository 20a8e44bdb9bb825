import { parseSse } from '../../../edge/src/tasks/sse';

/** One event as a test reads it: name, id and JSON data. */
export interface ReadEvent {
  event: string;
  id: string | null;
  data: Record<string, unknown>;
}

/**
 * Read a text/event-stream response's events until it ends, or until `stop` returns true for an
 * event (the stream is then cancelled, as a client that goes away would).
 */
export async function readEvents(response: Response, stop?: (event: ReadEvent) => boolean): Promise<ReadEvent[]> {
  const events: ReadEvent[] = [];
  for await (const message of parseSse(response.body!)) {
    const event = { event: message.event, id: message.id, data: JSON.parse(message.data) as Record<string, unknown> };
    events.push(event);
    if (stop?.(event)) break;
  }
  return events;
}
