/**
 * A job on its way through the service: its record (events), the job, the local model it runs on, and
 * the promise of its result. The member is what a batch leader takes out of the queue and runs inside
 * its own slot (dynamic batching); whoever runs it settles `outcome`.
 */
import type { GenerationJob, GenerationResult } from '@image-api/shared/generation-job';
import { BATCH_COUPLED_SAMPLERS, batchCompatibilityKey } from '../diffusion/pipelines/batch';
import { samplers } from '../diffusion/samplers';
import type { JobRecord } from './job-record';
import { NO_ADDONS, type ResolvedAddons } from '../addons/job-addons';
import { NO_POSTPROCESS, type ResolvedPostprocess } from '../postprocess/job-postprocess';

export class JobMember {
  /** The batch compatibility key, or undefined when this job always runs alone (see batchKeyOf). */
  readonly key: string | undefined;
  /** performance.now() at submission and at start, for timings and the latency metric. */
  readonly submittedAt: number;
  startedAt?: number;
  /** Steps reported so far and the time of the last one (steps-per-second metric). */
  steps = 0;
  lastStepAt?: number;
  /** Step of the last preview sent. */
  lastPreview = -Infinity;
  readonly outcome: Promise<GenerationResult>;
  private settle!: { resolve: (r: GenerationResult) => void; reject: (e: unknown) => void };
  private settled = false;

  constructor(
    readonly rec: JobRecord,
    readonly job: GenerationJob,
    /** The local model folder name (an hf.co reference resolved). */
    readonly modelName: string,
    batchingEnabled: boolean,
    submittedAt = performance.now(),
    /** The job's LoRAs, embeddings and VAE override, found at submit. */
    readonly addons: ResolvedAddons = NO_ADDONS,
    /** The job's post-processing models (hires upscaler, matting), found at submit. */
    readonly postprocess: ResolvedPostprocess = NO_POSTPROCESS,
  ) {
    this.submittedAt = submittedAt;
    this.key = batchingEnabled ? batchKeyOf(job, modelName) : undefined;
    this.outcome = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    // The executor always awaits outcome; this only keeps an early rejection from being "unhandled".
    this.outcome.catch(() => undefined);
  }

  get signal(): AbortSignal {
    return this.rec.controller.signal;
  }

  /** Still wanted: not cancelled, not timed out, not finished. */
  get active(): boolean {
    return !this.settled && !this.signal.aborted;
  }

  resolve(result: GenerationResult): void {
    if (this.settled) return;
    this.settled = true;
    this.settle.resolve(result);
  }

  reject(err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.settle.reject(err);
  }
}

/**
 * The key under which a job may share UNet runs with others, or undefined when it must run alone:
 * img2img / inpaint (their source latents and masks make every job different in kind and are rarer),
 * hires fix (two passes), a refiner handoff (two models), samplers whose maths couples images (dpm_adaptive), unknown samplers (they fail
 * alone with a proper 400). Jobs with equal keys still need equal token lengths (checked by the leader,
 * which has the model's tokenizer).
 */
export function batchKeyOf(job: GenerationJob, modelName: string): string | undefined {
  if (job.mode !== 'txt2img' || job.hires_fix || (job.refiner_switch_at ?? 0) > 0) return undefined;
  if (BATCH_COUPLED_SAMPLERS.has(job.sampler) || !Object.prototype.hasOwnProperty.call(samplers, job.sampler)) return undefined;
  return batchCompatibilityKey({ ...job, model: modelName });
}
