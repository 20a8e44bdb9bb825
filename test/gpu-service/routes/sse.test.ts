/**
 * GET …/events over real HTTP (streamJobEvents): Last-Event-ID resumes after that id, also when the
 * client attaches before the job has emitted it (the edge relays a client's Last-Event-ID early).
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobRecord } from '../../../gpu-service/src/jobs/job-record';
import { streamJobEvents } from '../../../gpu-service/src/routes/sse';
import { JobStream } from '../sse-client';

let app: FastifyInstance;
let base: string;
const records = new Map<string, JobRecord>();

beforeAll(async () => {
  app = Fastify();
  app.get<{ Params: { id: string } }>('/v1/jobs/:id/events', async (req, reply) => {
    streamJobEvents(req, reply, records.get(req.params.id)!);
    return reply;
  });
  base = await app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => app?.close());

describe('streamJobEvents', () => {
  it('with Last-Event-ID: 2 attached after `started` (id 1) but before step 1 (id 2): only ids > 2, then done', async () => {
    const rec = new JobRecord('job-early', 'tenant');
    records.set(rec.id, rec);
    rec.emit('started', { model: 'tiny-analytic' });
    const stream = new JobStream(await fetch(`${base}/v1/jobs/${rec.id}/events`, { headers: { 'last-event-id': '2' } }));
    for (let step = 1; step <= 3; step++) rec.emit('step', { step, total: 3, eta_seconds: 0 });
    rec.emit('done', { result: {} });
    const events = await stream.all();
    expect(events.map((e) => [e.event, e.id])).toEqual([
      ['step', 3],
      ['step', 4],
      ['done', 5],
    ]);
  });
});
