/**
 * Runs GenerationJobs: queue admission (tenant-fair, bounded), deadlines, progress/preview events, and
 * cancellation. A job that fails ends alone with a reason; the service keeps serving.
 */
import type { GenerationJob } from '../../../shared/src/generation-job';
import { errorBody } from '../../../shared/src/errors';
import { renderPreview } from '../diffusion/previews';
import { errors, ServiceError } from '../lib/errors';
import type { ModelRegistry } from '../models/model-registry';
import type { DiffusionModel } from '../models/diffusion-model';
import { JobQueue } from './job-queue';
import type { JobRecord } from './job-record';
import { JobStore } from './job-store';
import { runJob } from './run-job';

export interface JobServiceOptions {
  concurrency: number;
  queueMax: number;
  /** A job not started within this many seconds is dropped (0 = no limit). */
  startTimeoutSeconds: number;
  /** A job running longer than this many seconds in total is cancelled (0 = no limit). */
  jobTimeoutSeconds: number;
  /** Minimum steps between two preview events. */
  previewInterval: number;
  /** How long a finished job's events stay readable, in seconds. */
  retainSeconds: number;
}

export class JobService {
  readonly queue: JobQueue;
  readonly store: JobStore;

  constructor(
    private readonly registry: ModelRegistry,
    private readonly opts: JobServiceOptions,
    private readonly toError: (err: unknown) => ServiceError,
  ) {
    this.queue = new JobQueue(opts.concurrency, opts.queueMax);
    this.store = new JobStore(opts.retainSeconds * 1000);
  }

  /**
   * Admit a job and start it in the background.
   * @throws ServiceError model_not_found / model_unavailable / queue_full before anything is queued.
   */
  async submit(job: GenerationJob): Promise<JobRecord> {
    let model: DiffusionModel;
    try {
      model = await this.registry.get(job.model);
    } catch (err) {
      if ((err as { code?: string }).code === 'model_not_found') throw errors.modelNotFound(job.model, await this.registry.names());
      throw errors.modelBroken(job.model, (err as Error).message);
    }
    if (this.queue.active >= this.queue.concurrency && this.queue.depth >= this.queue.queueMax) {
      throw errors.queueFull(Math.max(1, this.queue.depth));
    }
    const rec = this.store.create(job.id, job.tenant);
    void this.execute(rec, model, job);
    return rec;
  }

  /** Cancel a queued or running job. @returns false when no such live job exists. */
  cancel(id: string, reason = 'cancelled by the client'): boolean {
    const rec = this.store.get(id);
    if (!rec || rec.isFinished) return false;
    // The abort reason is the ServiceError that ends the job.
    rec.controller.abort(errors.cancelled(reason));
    return true;
  }

  private async execute(rec: JobRecord, model: DiffusionModel, job: GenerationJob): Promise<void> {
    const { signal } = rec.controller;
    const timers: NodeJS.Timeout[] = [];
    if (this.opts.startTimeoutSeconds > 0) {
      timers.push(
        setTimeout(() => {
          if (rec.status === 'queued') {
            rec.controller.abort(new ServiceError(504, 'start_deadline_exceeded', `The job did not start within ${this.opts.startTimeoutSeconds} s.`));
          }
        }, this.opts.startTimeoutSeconds * 1000),
      );
    }
    if (this.opts.jobTimeoutSeconds > 0) {
      timers.push(
        setTimeout(
          () => rec.controller.abort(new ServiceError(504, 'deadline_exceeded', `The job exceeded its ${this.opts.jobTimeoutSeconds} s limit.`)),
          this.opts.jobTimeoutSeconds * 1000,
        ),
      );
    }
    try {
      const result = await this.queue.run(
        async () => {
          signal.throwIfAborted();
          rec.status = 'running';
          rec.emit('started', { model: job.model });
          let lastPreview = -Infinity;
          return runJob(model, job, {
            signal,
            onStep: async (p) => {
              rec.emit('step', { step: p.step, total: p.total, eta_seconds: Number(p.etaSeconds.toFixed(3)) });
              if (job.preview !== 'none' && p.step < p.total && p.step - lastPreview >= this.opts.previewInterval) {
                lastPreview = p.step;
                const bytes = await renderPreview(model, job.preview, p.denoised, p.latentHeight, p.latentWidth);
                rec.emit('preview', { step: p.step, mime_type: 'image/jpeg', b64: bytes.toString('base64') });
              }
            },
          });
        },
        { tenant: job.tenant, signal },
        (position) => rec.emit('queued', { position }),
      );
      rec.result = result;
      rec.status = 'succeeded';
      rec.emit('done', { result });
    } catch (err) {
      const reason = signal.aborted ? signal.reason : err;
      const se = this.toError(reason);
      rec.status = se.code === 'job_cancelled' ? 'cancelled' : 'failed';
      const body = errorBody(se.type, se.code, se.message, se.param) as unknown as Record<string, unknown>;
      rec.failure = { status: se.status, body };
      rec.emit('error', body);
    } finally {
      for (const t of timers) clearTimeout(t);
    }
  }
}
