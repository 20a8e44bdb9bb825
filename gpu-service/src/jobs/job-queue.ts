/**
 * The bounded, tenant-fair job queue (issue 5): round-robin between tenants, FIFO within one tenant, so a
 * burst from one tenant cannot starve the others; a fixed number of run slots (one per device by default);
 * at most `queueMax` waiting jobs, beyond which work is refused with queue_full (503 + Retry-After).
 * A job holding a slot may `take()` compatible waiting jobs to run them inside its own slot (dynamic
 * batching): a taken job leaves the queue without ever holding a slot of its own.
 */
import { errors } from '../lib/errors';

interface Waiter {
  tenant: string;
  /** Arrival order, for take(). */
  seq: number;
  /** Resolves the waiter: 'slot' = it now holds a slot, 'taken' = another job's slot runs it. */
  start: (how: 'slot' | 'taken') => void;
  signal?: AbortSignal;
  onAbort?: () => void;
  tag?: unknown;
}

export interface EnqueueOptions<T = unknown> {
  tenant: string;
  /** Aborting while still queued removes the job from the queue (the returned promise rejects). */
  signal?: AbortSignal;
  /** Opaque value shown to take() predicates; only tagged jobs can be taken. */
  tag?: unknown;
  /** What run() resolves to when the job is taken into another job's slot (required with `tag`). */
  whenTaken?: () => Promise<T>;
}

export class JobQueue {
  private running = 0;
  /** Waiting jobs per tenant, in tenant arrival order (Map keeps insertion order). */
  private readonly waiting = new Map<string, Waiter[]>();
  /** Tenants in round-robin order: the next tenant to serve is first. */
  private rotation: string[] = [];
  private seq = 0;

  constructor(
    readonly concurrency: number,
    readonly queueMax: number,
  ) {
    if (concurrency < 1) throw new Error('JobQueue: concurrency must be ≥ 1');
  }

  /** Jobs waiting for a slot. */
  get depth(): number {
    let n = 0;
    for (const q of this.waiting.values()) n += q.length;
    return n;
  }

  /** Jobs holding a slot now. */
  get active(): number {
    return this.running;
  }

  /** 1-based position the next dispatch order gives a tenant's k-th waiting job (approximate under round-robin). */
  positionOf(tenant: string, indexInTenant: number): number {
    const tenants = this.rotation.length;
    const ahead = this.rotation.indexOf(tenant);
    return indexInTenant * Math.max(tenants, 1) + Math.max(ahead, 0) + 1;
  }

  /**
   * Run `work` when a slot is free and the round-robin reaches this tenant.
   * @param onQueued called with the 1-based queue position when the job has to wait.
   * @returns work's result, or `opts.whenTaken()`'s when a slot holder took the job (see take()).
   * @throws ServiceError queue_full when queueMax jobs already wait; the signal's reason when aborted while waiting.
   */
  async run<T>(work: () => Promise<T>, opts: EnqueueOptions<T>, onQueued?: (position: number) => void): Promise<T> {
    opts.signal?.throwIfAborted();
    if (this.running >= this.concurrency || this.depth > 0) {
      if (this.depth >= this.queueMax) throw errors.queueFull(Math.max(1, Math.ceil(this.depth / this.concurrency)));
      const how = await new Promise<'slot' | 'taken'>((resolve, reject) => {
        const waiter: Waiter = { tenant: opts.tenant, seq: this.seq++, start: resolve, signal: opts.signal, tag: opts.whenTaken ? opts.tag : undefined };
        const list = this.waiting.get(opts.tenant) ?? [];
        if (list.length === 0) {
          this.waiting.set(opts.tenant, list);
          if (!this.rotation.includes(opts.tenant)) this.rotation.push(opts.tenant);
        }
        list.push(waiter);
        if (opts.signal) {
          waiter.onAbort = () => {
            this.remove(waiter);
            reject(opts.signal!.reason);
          };
          opts.signal.addEventListener('abort', waiter.onAbort, { once: true });
        }
        onQueued?.(this.positionOf(opts.tenant, list.length - 1));
      });
      // Taken: the taker's slot runs this job; this call never held a slot, so it releases none.
      if (how === 'taken') return opts.whenTaken!();
    } else {
      this.running++;
    }
    try {
      return await work();
    } finally {
      this.release();
    }
  }

  /**
   * Take waiting jobs out of the queue to run them in the caller's slot (dynamic batching). Tagged
   * waiters are offered oldest first; `accept(tag)` says whether to take one (it may keep its own count
   * and refuse once full). Taken jobs' run() calls resolve with their `whenTaken()`.
   * @returns the tags taken, in arrival order.
   */
  take(accept: (tag: unknown) => boolean): unknown[] {
    const candidates: Waiter[] = [];
    for (const list of this.waiting.values()) for (const w of list) if (w.tag !== undefined) candidates.push(w);
    candidates.sort((a, b) => a.seq - b.seq);
    const taken: unknown[] = [];
    for (const w of candidates) {
      if (w.signal?.aborted || !accept(w.tag)) continue;
      this.remove(w);
      if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
      taken.push(w.tag);
      w.start('taken');
    }
    return taken;
  }

  private remove(waiter: Waiter): void {
    const list = this.waiting.get(waiter.tenant);
    if (!list) return;
    const i = list.indexOf(waiter);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) {
      this.waiting.delete(waiter.tenant);
      this.rotation = this.rotation.filter((t) => t !== waiter.tenant);
    }
  }

  /** Hand the freed slot to the next tenant in rotation (its oldest job), or free it. */
  private release(): void {
    const tenant = this.rotation.shift();
    if (tenant === undefined) {
      this.running--;
      return;
    }
    const list = this.waiting.get(tenant)!;
    const next = list.shift()!;
    if (list.length === 0) this.waiting.delete(tenant);
    else this.rotation.push(tenant); // back of the line: round-robin
    if (next.signal && next.onAbort) next.signal.removeEventListener('abort', next.onAbort);
    next.start('slot');
  }
}
