/**
 * A bounded FIFO of jobs with a fixed number of run slots (one per device by default). When `queueMax`
 * jobs already wait, new work is refused with queue_full (503 + Retry-After) instead of piling up.
 */
import { errors } from '../lib/errors';

export class JobQueue {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly concurrency: number,
    private readonly queueMax: number,
  ) {}

  /** Jobs waiting for a slot. */
  get depth(): number {
    return this.waiting.length;
  }

  get active(): number {
    return this.running;
  }

  /**
   * Run `work` when a slot is free.
   * @throws ServiceError queue_full when the queue is at queueMax.
   */
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrency) {
      if (this.waiting.length >= this.queueMax) throw errors.queueFull(Math.max(1, this.waiting.length));
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}
