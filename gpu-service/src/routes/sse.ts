/**
 * Server-Sent Events over a hijacked Fastify reply: replay a job's log after Last-Event-ID, follow it live,
 * end after the final event. Heartbeat comments keep proxies from closing an idle stream.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { JobEvent, JobRecord } from '../jobs/job-record';

/** Format one SSE frame. */
export function sseFrame(e: JobEvent): string {
  return `id: ${e.id}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`;
}

/**
 * Stream `rec`'s events to the client.
 * @param onClientGone called when the client disconnects before the job finished.
 */
export function streamJobEvents(req: FastifyRequest, reply: FastifyReply, rec: JobRecord, onClientGone?: () => void): void {
  const last = Number(req.headers['last-event-id'] ?? 0);
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-job-id': rec.id,
  });
  res.write(': stream\n\n');
  let ended = false;
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
  const finish = () => {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    unsubscribe();
    res.end();
  };
  const unsubscribe = rec.subscribe(Number.isFinite(last) ? last : 0, (e) => {
    if (ended) return;
    res.write(sseFrame(e));
    if (e.event === 'done' || e.event === 'error') setImmediate(finish);
  });
  res.on('close', () => {
    const wasOpen = !ended;
    finish();
    if (wasOpen && !rec.isFinished) onClientGone?.();
  });
}
