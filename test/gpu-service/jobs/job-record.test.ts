/**
 * JobRecord's replayable event log: Last-Event-ID semantics of subscribe() for replayed AND live events.
 */
import { describe, expect, it } from 'vitest';
import { JobRecord, type JobEvent } from '../../../gpu-service/src/jobs/job-record';

describe('JobRecord.subscribe', () => {
  it('replays only the events after afterId, then follows live ones', () => {
    const rec = new JobRecord('job-a', 'tenant');
    rec.emit('started', {});
    rec.emit('step', { step: 1, total: 3 });
    rec.emit('step', { step: 2, total: 3 });
    const seen: number[] = [];
    rec.subscribe(2, (e) => seen.push(e.id));
    rec.emit('step', { step: 3, total: 3 });
    expect(seen).toEqual([3, 4]);
  });

  it('a subscriber whose Last-Event-ID is ahead of the log gets no live event at or below it', () => {
    // The edge relays a client's Last-Event-ID: 2 while the job has only emitted `started` (id 1):
    // step 1 (id 2) is emitted afterwards and must not reach it, or the client sees id 2 twice.
    const rec = new JobRecord('job-b', 'tenant');
    rec.emit('started', {});
    const seen: JobEvent[] = [];
    rec.subscribe(2, (e) => seen.push(e));
    rec.emit('step', { step: 1, total: 3 });
    rec.emit('step', { step: 2, total: 3 });
    rec.emit('step', { step: 3, total: 3 });
    rec.emit('done', { result: {} });
    expect(seen.map((e) => [e.event, e.id])).toEqual([
      ['step', 3],
      ['step', 4],
      ['done', 5],
    ]);
  });

  it('a subscriber that attached before the first event gets only those after afterId', () => {
    const rec = new JobRecord('job-c', 'tenant');
    const seen: number[] = [];
    rec.subscribe(2, (e) => seen.push(e.id));
    rec.emit('queued', { position: 1 });
    rec.emit('started', {});
    rec.emit('step', { step: 1, total: 1 });
    expect(seen).toEqual([3]);
  });
});
