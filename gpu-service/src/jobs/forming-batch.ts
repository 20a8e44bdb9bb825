/**
 * A batch being collected: the leader holds a slot and the loaded model; compatible jobs join until
 * MAX_BATCH images are reached, the batch holds the jobs recent demand expects, or the window ends.
 */
import { tokenizeWeightedPrompt } from '../diffusion/prompt/chunk-prompt';
import type { DiffusionModel } from '../models/diffusion-model';
import type { JobMember } from './job-member';

/**
 * Text-encoder chunks the job's prompt pair needs (prompt and negative prompt are padded to the longer),
 * i.e. its token length / 77; undefined when the prompt cannot be parsed (the job then runs alone and
 * fails there with a proper error).
 */
export function promptChunks(model: DiffusionModel, prompt: string, negativePrompt: string): number | undefined {
  try {
    return Math.max(tokenizeWeightedPrompt(model.tokenizer, prompt).chunks.length, tokenizeWeightedPrompt(model.tokenizer, negativePrompt).chunks.length);
  } catch {
    return undefined;
  }
}

export class FormingBatch {
  readonly members: JobMember[];
  private images: number;
  private readonly chunks: number | undefined;
  private onFull?: () => void;
  /** Jobs collect() waits for (besides capacity). */
  private targetJobs = Infinity;

  constructor(
    readonly key: string,
    private readonly model: DiffusionModel,
    leader: JobMember,
    /** MAX_BATCH: most images in one UNet run. */
    private readonly capacity: number,
  ) {
    this.members = [leader];
    this.images = leader.job.batch_size;
    this.chunks = promptChunks(model, leader.job.prompt, leader.job.negative_prompt);
  }

  /** Whether the leader itself can share its runs (a parsable prompt, an ordinary UNet, an allowed size). */
  get open(): boolean {
    const job = this.members[0].job;
    return this.chunks !== undefined && this.model.unetInChannels === this.model.latentChannels && job.width * job.height <= this.model.maxPixels;
  }

  get full(): boolean {
    return this.images >= this.capacity;
  }

  /** Add `m` when it is compatible and fits. @returns whether it joined. */
  tryAdd(m: JobMember): boolean {
    if (!this.open || m.key !== this.key || !m.active) return false;
    if (this.images + m.job.batch_size > this.capacity) return false;
    if (promptChunks(this.model, m.job.prompt, m.job.negative_prompt) !== this.chunks) return false;
    this.members.push(m);
    this.images += m.job.batch_size;
    if (this.done) this.onFull?.();
    return true;
  }

  private get done(): boolean {
    return this.full || this.members.length >= this.targetJobs;
  }

  /**
   * Wait until the batch is full, holds `targetJobs` jobs, or `ms` passed; returns at once when it
   * already does (a batch never waits for jobs nobody expects: see RecentDemand).
   */
  async collect(ms: number, targetJobs = Infinity): Promise<void> {
    this.targetJobs = targetJobs;
    if (this.done || ms <= 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.onFull = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.onFull = undefined;
  }
}
