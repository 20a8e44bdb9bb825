/**
 * Runs GenerationJobs: admission (model check, bounded tenant-fair queue), hf.co downloads, deadlines,
 * dynamic batching, progress/preview events, cancellation and graceful shutdown. A job that fails ends
 * alone with a reason; the service keeps serving.
 *
 * Dynamic batching: the job that gets a slot (the leader) loads its model, then takes compatible waiting
 * jobs out of the queue (what queued up while the slot was busy), and while its batch is short of
 * MAX_BATCH images *and* of the jobs recent demand expects (RecentDemand: the most compatible jobs in the
 * service at once lately) it waits up to BATCH_WINDOW_MS, and at most one run's time, for more (a
 * compatible job submitted meanwhile joins without queueing). A lone job on an idle service therefore starts at once (issue 18). Compatible = same model, size,
 * steps, sampler, scheduler and their options, rng kind, preview mode, cfg-1-or-not, and token length —
 * plain txt2img only (img2img, inpaint and hires fix run alone; so do dpm_adaptive jobs, whose error norm
 * would span the batch). The batch is one sampler run whose every step is one UNet call over every job's
 * images (diffusion/pipelines/batch.ts); events and results stay per job. A job cancelled mid-batch ends
 * at once and its images leave the UNet call from the next step; the others go on undisturbed. Jobs taken
 * into a batch skip the round-robin order: they ride in a slot that runs anyway.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { GenerationJob, GenerationResult } from '@image-api/shared/generation-job';
import { errorBody } from '@image-api/shared/errors';
import { generateBatch } from '../diffusion/pipelines/batch';
import type { StepProgress } from '../diffusion/pipelines/generate';
import { renderPreview } from '../diffusion/previews';
import { errors, ServiceError } from '../lib/errors';
import type { ServiceMetrics, JobOutcome } from '../metrics/service-metrics';
import type { DiffusionModel } from '../models/diffusion-model';
import type { ModelRegistry, ResolvedModel } from '../models/model-registry';
import { FormingBatch } from './forming-batch';
import { RecentDemand } from './recent-demand';
import { resolveJobAddons, type ResolvedAddons } from '../addons/job-addons';
import { JobMember } from './job-member';
import { JobQueue } from './job-queue';
import type { JobRecord } from './job-record';
import { JobStore } from './job-store';
import { encodeResult, runJob } from './run-job';
import { hasPostprocess, NO_STAGES, openJobStages, resolveJobPostprocess, type JobStages, type ResolvedPostprocess } from '../postprocess/job-postprocess';
import type { TileOptions } from '../postprocess/upscale-tiles';

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
  /** Most images in one batched UNet run; 1 = no batching. Default 1. */
  maxBatch?: number;
  /** How long a batch that is not full waits for more jobs, in ms. Default 0. */
  batchWindowMs?: number;
  /** The SDXL refiner for jobs with refiner_switch_at > 0 that name no refiner_model (SDXL_REFINER_MODEL). */
  refinerModel?: string;
  /** Tiles of upscaler models (UPSCALE_TILE_SIZE / UPSCALE_TILE_OVERLAP; default 192 / 8). */
  upscaleTiles?: TileOptions;
}

export interface JobServiceDeps {
  metrics?: ServiceMetrics;
  log?: FastifyBaseLogger;
}

/** How a job ended, for metrics and the record's status. */
function outcomeOf(se: ServiceError): { status: 'failed' | 'cancelled'; outcome: JobOutcome } {
  if (se.code === 'job_cancelled' || se.code === 'shutting_down') return { status: 'cancelled', outcome: 'cancelled' };
  if (se.code === 'deadline_exceeded' || se.code === 'start_deadline_exceeded') return { status: 'failed', outcome: 'timed_out' };
  return { status: 'failed', outcome: 'failed' };
}

/** Settle with `promise`, or reject with the signal's reason as soon as it aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export class JobService {
  readonly queue: JobQueue;
  readonly store: JobStore;
  /** Batches collecting jobs now, by batch key. */
  private readonly forming = new Map<string, FormingBatch>();
  /** Recent concurrency per batch key: how many jobs a forming batch waits for. */
  private readonly demand = new RecentDemand();
  private accepting = true;
  /** submit() calls past the accepting check whose record does not exist yet. */
  private admitting = 0;
  private readonly maxBatch: number;
  private readonly batchWindowMs: number;

  constructor(
    private readonly registry: ModelRegistry,
    private readonly opts: JobServiceOptions,
    private readonly toError: (err: unknown) => ServiceError,
    private readonly deps: JobServiceDeps = {},
  ) {
    this.queue = new JobQueue(opts.concurrency, opts.queueMax);
    this.store = new JobStore(opts.retainSeconds * 1000);
    this.maxBatch = opts.maxBatch ?? 1;
    this.batchWindowMs = opts.batchWindowMs ?? 0;
  }

  /** False once shutdown() began: new jobs are refused with 503 shutting_down. */
  get isAccepting(): boolean {
    return this.accepting;
  }

  /** Jobs running now (holding a slot or riding in a batch). */
  get running(): number {
    return this.store.live().filter((r) => r.status === 'running').length;
  }

  /**
   * Admit a job and start it in the background.
   * @throws ServiceError 503 shutting_down while draining; model_not_found (404), a bad model reference or
   *         a non-checkpoint (400), model_unavailable (503), queue_full (503) before anything is queued.
   */
  async submit(job: GenerationJob): Promise<JobRecord> {
    const submittedAt = performance.now();
    if (!this.accepting) {
      this.deps.metrics?.jobFinished('rejected', 0);
      throw errors.shuttingDown();
    }
    this.admitting++;
    try {
      const resolved = await this.registry.resolve(job.model, { downloadAnyRepo: job.download_any_repo });
      // The prompt's <lora:…> tags become LoRAs; every add-on is found now, so a bad one is refused at once.
      const withAddons = await resolveJobAddons(job, this.registry.addons);
      // Post-processing models (hires upscaler, matting) too: a missing one is a 400 now, not a skipped stage.
      const postprocess = await resolveJobPostprocess(job, this.registry.postprocess);
      if (this.queue.active >= this.queue.concurrency && this.queue.depth >= this.queue.queueMax) {
        this.deps.metrics?.jobFinished('rejected', 0);
        throw errors.queueFull(Math.max(1, this.queue.depth));
      }
      const rec = this.store.create(job.id, job.tenant);
      void this.execute(rec, withAddons.job, resolved, submittedAt, withAddons.addons, postprocess);
      return rec;
    } finally {
      this.admitting--;
    }
  }

  /** Cancel a queued or running job. @returns false when no such live job exists. */
  cancel(id: string, reason = 'cancelled by the client'): boolean {
    const rec = this.store.get(id);
    if (!rec || rec.isFinished) return false;
    // The abort reason is the ServiceError that ends the job.
    rec.controller.abort(errors.cancelled(reason));
    return true;
  }

  /**
   * Graceful shutdown: refuse new jobs, let queued and running ones finish for `graceSeconds`, then
   * cancel what is left (each stops at its next step) and wait for them to end.
   * @returns how many jobs finished on their own and how many were cancelled.
   */
  async shutdown(graceSeconds: number): Promise<{ finished: number; cancelled: number }> {
    this.accepting = false;
    const deadline = Date.now() + graceSeconds * 1000;
    const seen = new Set<JobRecord>();
    // Jobs admitted just before the signal may still be creating their record: keep looking until none is live.
    for (;;) {
      const live = this.store.live();
      for (const r of live) seen.add(r);
      if (live.length === 0 && this.admitting === 0) return { finished: seen.size, cancelled: 0 };
      const left = deadline - Date.now();
      if (left <= 0) break;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(live.map((r) => r.finished)).then(() => new Promise((r) => setImmediate(r))),
        new Promise((r) => (timer = setTimeout(r, Math.min(left, 1000)))),
      ]);
      clearTimeout(timer);
    }
    const left = this.store.live();
    for (const rec of left) rec.controller.abort(errors.cancelledByShutdown(graceSeconds));
    await Promise.race([Promise.all(left.map((r) => r.finished)), new Promise((r) => setTimeout(r, 30_000).unref())]);
    return { finished: seen.size - left.length, cancelled: left.length };
  }

  private async execute(rec: JobRecord, job: GenerationJob, resolved: ResolvedModel, submittedAt: number, addons: ResolvedAddons, postprocess: ResolvedPostprocess): Promise<void> {
    const { signal } = rec.controller;
    const log = this.deps.log?.child({ job_id: rec.id, tenant: job.tenant, model: job.model });
    const timers: NodeJS.Timeout[] = [];
    const member = new JobMember(rec, job, resolved.name, this.maxBatch > 1, submittedAt, addons, postprocess);
    if (member.key) this.demand.enter(member.key);
    try {
      if (resolved.download) {
        log?.info({ ref: resolved.download.ref.ref, files: resolved.download.files.length, bytes: resolved.download.totalBytes }, 'downloading model');
        await abortable(
          this.registry.download(resolved.download, (p) => rec.emit('downloading', { bytes: p.bytes, total: p.total })),
          signal,
        );
      }
      // Deadlines count from here: a first download of a large model may take longer than a job.
      if (this.opts.startTimeoutSeconds > 0) {
        timers.push(
          setTimeout(() => {
            if (rec.status === 'queued') rec.controller.abort(errors.startDeadline(this.opts.startTimeoutSeconds));
          }, this.opts.startTimeoutSeconds * 1000),
        );
      }
      if (this.opts.jobTimeoutSeconds > 0) {
        timers.push(setTimeout(() => rec.controller.abort(errors.deadline(this.opts.jobTimeoutSeconds)), this.opts.jobTimeoutSeconds * 1000));
      }
      if (!(member.key && this.forming.get(member.key)?.tryAdd(member))) {
        this.queue
          .run(() => this.lead(member), { tenant: job.tenant, signal, tag: member.key ? member : undefined, whenTaken: async () => undefined }, (position) =>
            rec.emit('queued', { position }),
          )
          .catch((err) => member.reject(err));
      }
      // A cancelled job ends now, even when its batch runs on.
      const result = await abortable(member.outcome, signal);
      rec.result = result;
      rec.status = 'succeeded';
      rec.emit('done', { result });
      this.finish(member, 'succeeded', log);
    } catch (err) {
      const reason = signal.aborted ? signal.reason : err;
      member.reject(reason);
      const se = this.toError(reason);
      const { status, outcome } = outcomeOf(se);
      rec.status = status;
      const body = errorBody(se.type, se.code, se.message, se.param) as unknown as Record<string, unknown>;
      rec.failure = { status: se.status, body };
      rec.emit('error', body);
      this.finish(member, outcome, log, se);
    } finally {
      for (const t of timers) clearTimeout(t);
      if (member.key) this.demand.leave(member.key);
    }
  }

  private finish(m: JobMember, outcome: JobOutcome, log: FastifyBaseLogger | undefined, se?: ServiceError): void {
    const seconds = (performance.now() - m.submittedAt) / 1000;
    this.deps.metrics?.jobFinished(outcome, seconds);
    if (outcome === 'succeeded') this.deps.metrics?.imagesGenerated(m.job.batch_size);
    const fields = { outcome, duration_ms: Math.round(seconds * 1000), steps: m.steps, ...(se ? { code: se.code, error: se.message } : {}) };
    if (se && se.status >= 500 && outcome === 'failed') log?.error(fields, 'job failed');
    else log?.info(fields, 'job finished');
  }

  /** Runs in the job's slot: load the model, collect a batch, run it. Settles every member it ran. */
  private async lead(leader: JobMember): Promise<void> {
    if (!leader.active) return;
    let lease;
    try {
      lease = await this.registry.acquire(leader.modelName, leader.addons);
    } catch (err) {
      leader.reject(err);
      return;
    }
    try {
      let members = [leader];
      if (leader.key && this.maxBatch > leader.job.batch_size) {
        const batch = new FormingBatch(leader.key, lease.model, leader, this.maxBatch);
        if (batch.open) {
          this.forming.set(leader.key, batch);
          try {
            this.queue.take((tag) => batch.tryAdd(tag as JobMember));
            // Wait only for jobs recent load says are coming, and never longer than one run of this kind.
            const window = Math.min(this.batchWindowMs, this.demand.lastRunMs(leader.key) ?? this.batchWindowMs);
            await batch.collect(window, this.demand.peak(leader.key));
            this.queue.take((tag) => batch.tryAdd(tag as JobMember));
          } finally {
            if (this.forming.get(leader.key) === batch) this.forming.delete(leader.key);
          }
          members = batch.members;
        }
      }
      const live = members.filter((m) => m.active);
      const runStarted = performance.now();
      if (live.length === 1 && (live[0].job.refiner_switch_at ?? 0) > 0) await this.runWithRefiner(live[0], lease.model);
      else if (live.length === 1) await this.runAlone(live[0], lease.model);
      else if (live.length > 1) await this.runBatch(live, lease.model);
      if (leader.key) this.demand.ran(leader.key, performance.now() - runStarted);
    } finally {
      lease.release();
    }
  }

  private start(m: JobMember, jobs: number, images: number): void {
    m.startedAt = performance.now();
    m.rec.status = 'running';
    m.rec.emit('started', { model: m.job.model, batch: { jobs, images } });
    this.deps.log?.debug({ job_id: m.rec.id, batch_jobs: jobs, batch_images: images }, 'job started');
  }

  private async onStep(m: JobMember, model: DiffusionModel, p: StepProgress): Promise<void> {
    // A job that ended (cancelled while its step was in flight) reports nothing more.
    if (!m.active) return;
    m.steps = p.step;
    m.lastStepAt = performance.now();
    this.deps.metrics?.step();
    m.rec.emit('step', { step: p.step, total: p.total, eta_seconds: Number(p.etaSeconds.toFixed(3)) });
    if (m.job.preview !== 'none' && p.step < p.total && p.step - m.lastPreview >= this.opts.previewInterval) {
      m.lastPreview = p.step;
      const bytes = await renderPreview(model, m.job.preview, p.denoised, p.latentHeight, p.latentWidth, { width: m.job.width, height: m.job.height });
      m.rec.emit('preview', { step: p.step, mime_type: 'image/jpeg', b64: bytes.toString('base64') });
    }
  }

  private withQueueTime(m: JobMember, result: GenerationResult): GenerationResult {
    return { ...result, timings: { ...result.timings, queue_ms: (m.startedAt ?? m.submittedAt) - m.submittedAt } };
  }

  /**
   * A base → refiner job: the refiner (the job's refiner_model, else the service's SDXL_REFINER_MODEL) is leased
   * beside the base for the whole run. An unknown or unloadable refiner is a 400 on refiner_model.
   */
  private async runWithRefiner(m: JobMember, model: DiffusionModel): Promise<void> {
    const name = m.job.refiner_model ?? this.opts.refinerModel;
    if (!name) {
      m.reject(errors.invalidRequest('refiner_model', `refiner_switch_at ${m.job.refiner_switch_at} needs a refiner: name one in refiner_model (this service sets no SDXL_REFINER_MODEL)`));
      return;
    }
    let lease;
    try {
      lease = await this.registry.acquire(name);
    } catch (err) {
      const se = err instanceof ServiceError ? err : undefined;
      m.reject(se && se.param === 'model' ? new ServiceError(se.status === 404 ? 400 : se.status, se.code, `refiner_model: ${se.message}`, 'refiner_model') : err);
      return;
    }
    try {
      await this.runAlone(m, model, lease.model);
    } finally {
      lease.release();
    }
  }

  /** The sessions of a member's post-processing models (none opened for a job without any). */
  private stagesOf(m: JobMember): Promise<JobStages> {
    if (!hasPostprocess(m.postprocess)) return Promise.resolve(NO_STAGES);
    return openJobStages(m.postprocess, this.registry.postprocess, this.registry.postprocessSessions, this.opts.upscaleTiles, m.job.face_restore_fidelity);
  }

  private async runAlone(m: JobMember, model: DiffusionModel, refiner?: DiffusionModel): Promise<void> {
    this.start(m, 1, m.job.batch_size);
    try {
      const stages = await this.stagesOf(m);
      const result = await runJob(model, m.job, { signal: m.signal, onStep: (p) => this.onStep(m, model, p) }, { refiner }, stages);
      this.deps.metrics?.runFinished(m.job.batch_size, 1, m.steps, ((m.lastStepAt ?? performance.now()) - m.startedAt!) / 1000);
      m.resolve(this.withQueueTime(m, result));
    } catch (err) {
      m.reject(err);
    }
  }

  private async runBatch(members: JobMember[], model: DiffusionModel): Promise<void> {
    const images = members.reduce((n, m) => n + m.job.batch_size, 0);
    for (const m of members) this.start(m, members.length, images);
    const started = performance.now();
    // When every job has left the batch, stop sampling at the next step.
    const batchAbort = new AbortController();
    const onLeave = () => {
      if (members.every((m) => !m.active)) batchAbort.abort(errors.cancelled('every job of the batch left it'));
    };
    for (const m of members) m.signal.addEventListener('abort', onLeave);
    try {
      const outputs = await generateBatch(
        model,
        members.map((m) => ({ job: m.job, isActive: () => m.active, onStep: (p: StepProgress) => this.onStep(m, model, p) })),
        { signal: batchAbort.signal },
      );
      const steps = Math.max(...members.map((m) => m.steps));
      this.deps.metrics?.runFinished(images, members.length, steps, (performance.now() - started) / 1000);
      await Promise.all(
        members.map(async (m, j) => {
          const decoded = outputs[j];
          if (!decoded || !m.active) return;
          try {
            m.resolve(this.withQueueTime(m, await encodeResult(model, m.job, decoded, m.startedAt!, await this.stagesOf(m), m.signal)));
          } catch (err) {
            m.reject(err);
          }
        }),
      );
    } catch (err) {
      for (const m of members) m.reject(err);
    } finally {
      for (const m of members) m.signal.removeEventListener('abort', onLeave);
    }
  }
}
