/**
 * Jobs by id, kept after they finish for `retainMs` so late or reconnecting clients can read the outcome.
 */
import { JobRecord } from './job-record';

export class JobStore {
  private readonly jobs = new Map<string, JobRecord>();

  constructor(private readonly retainMs: number) {}

  /** @throws Error when a live job already has this id. */
  create(id: string, tenant: string): JobRecord {
    this.sweep();
    const existing = this.jobs.get(id);
    if (existing && !existing.isFinished) throw Object.assign(new Error(`job ${id} is already running`), { code: 'job_exists' });
    const rec = new JobRecord(id, tenant);
    this.jobs.set(id, rec);
    return rec;
  }

  get(id: string): JobRecord | undefined {
    this.sweep();
    return this.jobs.get(id);
  }

  /** Jobs not finished yet. */
  live(): JobRecord[] {
    return [...this.jobs.values()].filter((j) => !j.isFinished);
  }

  private sweep(): void {
    const cutoff = Date.now() - this.retainMs;
    for (const [id, j] of this.jobs) if (j.finishedAt !== undefined && j.finishedAt < cutoff) this.jobs.delete(id);
  }
}
