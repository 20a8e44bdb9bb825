/**
 * The GPU service's Prometheus metrics (prom-client), on a registry of its own per app instance (so two
 * apps in one process — tests, benchmarks — never share counters). Served at GET /metrics.
 *
 * gpu_service_queue_depth            gauge      jobs waiting for a slot
 * gpu_service_jobs_running           gauge      jobs holding a slot or riding in a batch
 * gpu_service_jobs_total{outcome}    counter    finished jobs: succeeded | failed | cancelled | timed_out | rejected
 * gpu_service_job_duration_seconds   histogram  submission → end, by outcome
 * gpu_service_steps_total            counter    denoising steps completed, summed over jobs
 * gpu_service_steps_per_second       gauge      sampler steps per second of the last finished run
 *                                               (a batch counts each of its steps once)
 * gpu_service_images_total           counter    images generated
 * gpu_service_batch_size             histogram  images per UNet run (1 job alone = its batch_size)
 * gpu_service_batch_jobs             histogram  jobs per run
 * gpu_service_models_loaded          gauge      models loaded now
 * gpu_service_model_memory_bytes     gauge      ONNX bytes of the loaded models (the budgeted footprint)
 * gpu_service_model_loads_total{outcome}, gpu_service_model_unloads_total{reason}, gpu_service_model_downloads_total
 * plus prom-client's default process metrics (gpu_service_process_*, gpu_service_nodejs_*).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RegistryEvent } from '../models/model-registry';

/** Final outcome of a job, as counted. */
export type JobOutcome = 'succeeded' | 'failed' | 'cancelled' | 'timed_out' | 'rejected';

/** Live values read at scrape time. */
export interface MetricsSources {
  queueDepth: () => number;
  running: () => number;
  modelsLoaded: () => number;
  modelBytes: () => number;
}

export class ServiceMetrics {
  readonly registry = new Registry();
  private readonly jobs: Counter<'outcome'>;
  private readonly duration: Histogram<'outcome'>;
  private readonly steps: Counter;
  private readonly stepsPerSecond: Gauge;
  private readonly images: Counter;
  private readonly batchSize: Histogram;
  private readonly batchJobs: Histogram;
  private readonly loads: Counter<'outcome'>;
  private readonly unloads: Counter<'reason'>;
  private readonly downloads: Counter;
  private readonly loadSeconds: Histogram<'source'>;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'gpu_service_' });
    new Gauge({ name: 'gpu_service_queue_depth', help: 'Jobs waiting for a slot.', registers, collect() {
      this.set(sources.queueDepth());
    } });
    new Gauge({ name: 'gpu_service_jobs_running', help: 'Jobs running now (alone or in a batch).', registers, collect() {
      this.set(sources.running());
    } });
    new Gauge({ name: 'gpu_service_models_loaded', help: 'Models loaded now.', registers, collect() {
      this.set(sources.modelsLoaded());
    } });
    new Gauge({ name: 'gpu_service_model_memory_bytes', help: 'Bytes of ONNX files of the loaded models.', registers, collect() {
      this.set(sources.modelBytes());
    } });
    this.jobs = new Counter({ name: 'gpu_service_jobs_total', help: 'Jobs finished, by outcome.', labelNames: ['outcome'], registers });
    this.duration = new Histogram({
      name: 'gpu_service_job_duration_seconds',
      help: 'Job latency from submission to its end, by outcome.',
      labelNames: ['outcome'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900],
      registers,
    });
    this.steps = new Counter({ name: 'gpu_service_steps_total', help: 'Denoising steps completed, summed over jobs.', registers });
    this.stepsPerSecond = new Gauge({ name: 'gpu_service_steps_per_second', help: 'Sampler steps per second of the last finished run.', registers });
    this.images = new Counter({ name: 'gpu_service_images_total', help: 'Images generated.', registers });
    this.batchSize = new Histogram({
      name: 'gpu_service_batch_size',
      help: 'Images per UNet run (dynamic batching; a job alone counts its batch_size).',
      buckets: [1, 2, 3, 4, 6, 8, 12, 16, 24, 32],
      registers,
    });
    this.batchJobs = new Histogram({ name: 'gpu_service_batch_jobs', help: 'Jobs per run.', buckets: [1, 2, 3, 4, 6, 8, 16], registers });
    this.loads = new Counter({ name: 'gpu_service_model_loads_total', help: 'Model loads, by outcome.', labelNames: ['outcome'], registers });
    this.unloads = new Counter({ name: 'gpu_service_model_unloads_total', help: 'Model unloads, by reason.', labelNames: ['reason'], registers });
    this.downloads = new Counter({ name: 'gpu_service_model_downloads_total', help: 'Models downloaded from HF_ENDPOINT.', registers });
    this.loadSeconds = new Histogram({
      name: 'gpu_service_model_load_seconds',
      help: 'Seconds to make a model ready, by source: "conversion" (a checkpoint built into the conversion cache), "cache" (a checkpoint loaded from it) or "onnx" (an ONNX folder); loads include warm-up.',
      labelNames: ['source'],
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900],
      registers,
    });
    for (const outcome of ['succeeded', 'failed', 'cancelled', 'timed_out', 'rejected']) this.jobs.inc({ outcome }, 0);
  }

  /** A job ended (or was refused at admission: 'rejected'). */
  jobFinished(outcome: JobOutcome, seconds: number): void {
    this.jobs.inc({ outcome });
    this.duration.observe({ outcome }, seconds);
  }

  /** One denoising step of one job. */
  step(): void {
    this.steps.inc();
  }

  /** A run (one job alone or a batch) finished its sampling: `steps` sampler steps in `seconds`. */
  runFinished(images: number, jobs: number, steps: number, seconds: number): void {
    this.batchSize.observe(images);
    this.batchJobs.observe(jobs);
    if (seconds > 0) this.stepsPerSecond.set(steps / seconds);
  }

  /** Images delivered in results. */
  imagesGenerated(n: number): void {
    this.images.inc(n);
  }

  /** Count the registry's model events. */
  modelEvent(e: RegistryEvent): void {
    switch (e.type) {
      case 'loaded':
        this.loads.inc({ outcome: 'loaded' });
        this.loadSeconds.observe({ source: e.source }, e.seconds);
        break;
      case 'load_failed':
        this.loads.inc({ outcome: 'failed' });
        break;
      case 'unloaded':
        this.unloads.inc({ reason: e.reason });
        break;
      case 'downloaded':
        this.downloads.inc();
        break;
      case 'converted':
        break;
    }
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ body: string; contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }
}
