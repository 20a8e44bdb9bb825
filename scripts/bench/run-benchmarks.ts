/**
 * One benchmark run, the sections asked for (bench-options.ts BENCH_SECTIONS): generate the models, measure the
 * pipeline's step overhead and speed on tiny-analytic and bench-512, then the GPU service's throughput at
 * concurrency 1, 4 and 8 with batching on and off, everything in one process so the ratios compare like with like;
 * then the checkpoint engine on a real-size SD 1.5 (sd15/sd15-section.ts, in child processes of its own); opt-in,
 * the same throughput points on that SD 1.5 through the checkpoint engine (`throughput-sd15`).
 */
import { benchEdgeInputChecks, type EdgeCheckResult } from './edge-input-checks';
import { runEdgeSection, type EdgeReport as EdgePathReport } from './edge/edge-section';
import { runFluxSection, type FluxReport } from './flux/flux-section';
import { FLUX_BENCH_SHAPE } from './flux/flux-shape';
import { runGgufSection, type GgufReport } from './gguf/gguf-section';
import type { FastifyInstance } from 'fastify';
import { cpus, loadavg, tmpdir } from 'node:os';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { loadDiffusionModel } from '../../gpu-service/src/models/diffusion-model';
import { ONNXRUNTIME_VERSION } from '../../gpu-service/src/onnx/session';
import { generateTinyModel, TINY_DEFAULT_VARIANT } from '../tiny-model/generate';
import { BENCH_MODEL_NAME, generateBenchModel } from './bench-model';
import { benchSizes, type BenchOptions, type BenchSection } from './bench-options';
import { benchPipeline, type PipelineBenchResult } from './pipeline-overhead';
import { runSd15Section, type Sd15Report } from './sd15/sd15-section';
import { ensureSd15Checkpoint, SD15_BENCH_MODEL_ID } from './sd15/sd15-checkpoint';
import { runSdxlSection, type SdxlReport } from './sdxl/sdxl-section';
import { benchOrtSettings, type OrtVariantResult } from './ort-settings';
import {
  BATCHING,
  NO_BATCHING,
  compareImages,
  measureThroughput,
  startBenchService,
  type BenchServiceOptions,
  type PointLength,
  type ThroughputJob,
  type ThroughputPoint,
} from './service-throughput';

/** The point of `points` at concurrency `c` with batching on or off. @throws Error when it was not measured. */
export function pointOf(points: ThroughputPoint[], c: number, batching: boolean): ThroughputPoint {
  const point = points.find((p) => p.concurrency === c && p.batching === batching);
  if (!point) throw new Error(`no throughput point c${c} ${batching ? 'batch' : 'nobatch'}`);
  return point;
}

/** Concurrency levels of the throughput benchmark. */
export const BENCH_CONCURRENCY = [1, 4, 8] as const;

/** The throughput points of one model, and whether every batched image equalled its unbatched twin. */
export interface ThroughputSection {
  job: ThroughputJob;
  points: ThroughputPoint[];
  /** Seeds answered by both the batch and the nobatch service, and how many of their images differ (goal 0). */
  images_compared: number;
  images_differing: number;
}

/**
 * Everything one run measured, the JSON printed by --json (details included). The fields of a section that did not
 * run (--only) are absent.
 */
export interface BenchReport {
  sections: BenchSection[];
  pipeline_overhead_share?: Record<string, number>;
  steps_per_second?: Record<string, number>;
  /** Per throughput model: images/s by point (`c4`, `c4_nobatch`), p50/p95 latency ms (`c4_p50_ms`, `c4_nobatch_p95_ms`). */
  throughput_images_per_second?: Record<string, Record<string, number>>;
  /**
   * Ratios from this run: step time / onnxruntime time per model; per throughput model cN/c1 throughput and
   * batch/nobatch (`<model>_c4_batch_over_nobatch`).
   */
  ratios?: Record<string, number>;
  pipeline?: PipelineBenchResult[];
  /** One entry per throughput model (tiny-analytic at its native size, bench-512 at 256², where the UNet dominates; with throughput-sd15 the real-size SD 1.5 at 256²). */
  throughput?: ThroughputSection[];
  /** onnxruntime settings on the bench-512 UNet at 256² (ort-settings.ts). */
  ort?: OrtVariantResult[];
  /** CPU ms of the edge's input checks on the largest allowed inputs (edge-input-checks.ts). */
  edge?: EdgeCheckResult[];
  sd15?: Sd15Report;
  sdxl?: SdxlReport;
  flux?: FluxReport;
  /** GGUF dequantized vs kept quantized (gguf/gguf-section.ts). */
  gguf?: GgufReport;
  /** The edge's critical path on the local stack (edge/edge-section.ts). */
  edge_path?: EdgePathReport;
  machine: {
    cpus: number;
    cpu_model: string;
    execution_provider: 'cpu';
    intra_op_threads: number;
    onnxruntime_node: string;
    node: string;
    platform: string;
    date: string;
    quick: boolean;
    /** 1-minute load average at the start and at the end of the run (other processes make figures noisy). */
    load_average: [number, number];
  };
}

/**
 * Run every benchmark.
 * @param log progress lines (stderr in the CLI).
 * @throws Error when a model cannot be generated or loaded, or a service job fails.
 */
export async function runBenchmarks(options: BenchOptions, log: (line: string) => void): Promise<BenchReport> {
  const loadAtStart = loadavg()[0];
  const sizes = benchSizes(options.quick);
  const modelsDir = options.modelsDir ? path.resolve(options.modelsDir) : await mkdtemp(path.join(tmpdir(), 'bench-models-'));
  const has = (section: BenchSection) => options.sections.includes(section);
  try {
    const sessionOptions = { executionProviders: ['cpu' as const], intraOpNumThreads: options.threads };
    if (has('pipeline') || has('throughput') || has('ort')) {
      log(`generating ${TINY_DEFAULT_VARIANT} and ${BENCH_MODEL_NAME} in ${modelsDir}`);
      await generateTinyModel(path.join(modelsDir, TINY_DEFAULT_VARIANT));
      await generateBenchModel(path.join(modelsDir, BENCH_MODEL_NAME));
    }

    let pipeline: PipelineBenchResult[] | undefined;
    if (has('pipeline')) {
      pipeline = [];
      for (const [name, steps] of [
        [TINY_DEFAULT_VARIANT, sizes.tinySteps],
        [BENCH_MODEL_NAME, sizes.benchSteps],
      ] as const) {
        const model = await loadDiffusionModel(path.join(modelsDir, name), sessionOptions);
        try {
          const [width, height] = model.nativeSize;
          log(`pipeline: ${name} at ${width}x${height}, ${steps} steps × ${sizes.repeats}`);
          const result = await benchPipeline(model, { width, height, steps, repeats: sizes.repeats });
          log(`  ${result.stepsPerSecond.toFixed(2)} steps/s, ${(result.overheadShare * 100).toFixed(2)}% outside onnxruntime`);
          pipeline.push(result);
        } finally {
          await model.release();
        }
      }
    }

    let throughput: BenchReport['throughput'];
    if (has('throughput')) {
      const tiny = await loadDiffusionModel(path.join(modelsDir, TINY_DEFAULT_VARIANT), sessionOptions);
      const [tinyWidth, tinyHeight] = tiny.nativeSize;
      await tiny.release();
      const jobs: ThroughputJob[] = [
        { model: TINY_DEFAULT_VARIANT, width: tinyWidth, height: tinyHeight, steps: sizes.throughputSteps, sampler: 'euler', cfgScale: 7 },
        // Where the UNet dominates, as with real models: batching and queueing measured where the time goes.
        { model: BENCH_MODEL_NAME, width: 256, height: 256, steps: sizes.benchThroughputSteps, sampler: 'euler', cfgScale: 7 },
      ];
      throughput = [];
      for (const job of jobs) {
        const points = await throughputPoints(modelsDir, job, options.threads, sizes.throughputRounds, { minJobs: sizes.pointMinJobs, minSeconds: sizes.pointMinSeconds }, log);
        throughput.push({ job, points, ...comparedImages(points, log, job.model) });
      }
    }

    if (has('throughput-sd15')) {
      // The same points on the real-size SD 1.5 architecture through the checkpoint engine (its first load
      // converts the checkpoint into <modelsDir>/sd15/.cache, or reuses the sd15 section's entry).
      const files = await ensureSd15Checkpoint(modelsDir);
      const { steps, rounds, minJobs, warmUpJobs } = sizes.sd15Throughput;
      const job: ThroughputJob = { model: SD15_BENCH_MODEL_ID, width: 256, height: 256, steps, sampler: 'euler', cfgScale: 7 };
      log(`throughput-sd15: ${job.model} (${(files.checkpointBytes / 1e9).toFixed(2)} GB) at 256², ${steps} steps, ${rounds} round(s) of ${minJobs} jobs per point`);
      const points = await throughputPoints(files.root, job, options.threads, rounds, { minJobs, minSeconds: 0 }, log, {
        warmUpJobs,
        app: { clipTokenizerDir: files.tokenizerDir },
      });
      throughput = [...(throughput ?? []), { job, points, ...comparedImages(points, log, job.model) }];
    }

    const ort = has('ort') ? await benchOrtSettings(path.join(modelsDir, BENCH_MODEL_NAME), sizes.ort, options.threads, log) : undefined;
    const edge = has('edge') ? await benchEdgeInputChecks(sizes.edgeRepeats, log) : undefined;
    const sd15 = has('sd15') ? await runSd15Section({ modelsDir, threads: options.threads, sizes: sizes.sd15 }, log) : undefined;
    const sdxl = has('sdxl') ? await runSdxlSection({ modelsDir, threads: options.threads, sizes: sizes.sdxl }, log) : undefined;
    const flux = has('flux')
      ? await runFluxSection({ modelsDir, threads: options.threads, shape: { ...FLUX_BENCH_SHAPE, hiddenSize: options.fluxWidth, size: options.fluxSize }, repeats: sizes.fluxRepeats }, log)
      : undefined;
    const gguf = has('gguf')
      ? await runGgufSection({ modelsDir, threads: options.threads, shape: { ...FLUX_BENCH_SHAPE, hiddenSize: options.fluxWidth, size: options.fluxSize }, repeats: sizes.fluxRepeats }, log)
      : undefined;
    const edgePath = has('edge-path') ? await runEdgeSection({ modelsDir, sizes: sizes.edgePath, loadAverage: () => loadavg()[0] }, log) : undefined;
    return { ...summarise({ pipeline, throughput, sd15, sdxl, flux }, options, loadAtStart), ...(ort ? { ort } : {}), ...(edge ? { edge } : {}), ...(gguf ? { gguf } : {}), ...(edgePath ? { edge_path: edgePath } : {}) };
  } finally {
    if (!options.modelsDir) await rm(modelsDir, { recursive: true, force: true });
  }
}

/** Batched images compared with the unbatched ones of the same seeds (they must be byte-identical), logged. */
function comparedImages(points: ThroughputPoint[], log: (line: string) => void, model: string): { images_compared: number; images_differing: number } {
  let compared = 0;
  let differing = 0;
  for (const c of BENCH_CONCURRENCY) {
    const [n, d] = compareImages(pointOf(points, c, true), pointOf(points, c, false));
    compared += n;
    differing += d;
  }
  log(`throughput ${model}: ${compared} batched images compared with unbatched ones, ${differing} differ`);
  return { images_compared: compared, images_differing: differing };
}

/**
 * Every (concurrency, batching) point, measured in `rounds` interleaved rounds with both services up
 * (batch and nobatch alternate which goes first), keeping each point's best round: the machine's other
 * load then hits both columns alike instead of favouring whichever ran last.
 */
async function throughputPoints(
  modelsDir: string,
  job: ThroughputJob,
  threads: number,
  rounds: number,
  length: PointLength,
  log: (line: string) => void,
  service: BenchServiceOptions = {},
): Promise<ThroughputPoint[]> {
  const apps = new Map<boolean, FastifyInstance>();
  try {
    for (const batching of [true, false]) apps.set(batching, await startBenchService(modelsDir, batching ? BATCHING : NO_BATCHING, job, threads, service));
    const best = new Map<string, ThroughputPoint>();
    for (let round = 0; round < rounds; round++) {
      for (const c of BENCH_CONCURRENCY) {
        const order = round % 2 === 0 ? [true, false] : [false, true];
        for (const batching of order) {
          const point = await measureThroughput(apps.get(batching)!, job, c, length, batching);
          log(
            `throughput round ${round + 1}/${rounds}: c${c} ${batching ? 'batch' : 'nobatch'}: ` +
              `${point.imagesPerSecond.toFixed(2)} images/s (${point.jobs} jobs in ${point.seconds.toFixed(2)} s)`,
          );
          const key = `${c}:${batching}`;
          const previous = best.get(key);
          if (!previous || point.imagesPerSecond > previous.imagesPerSecond) best.set(key, point);
        }
      }
    }
    return [...best.values()];
  } finally {
    for (const app of apps.values()) await app.close();
  }
}

function summarise(
  measured: { pipeline?: PipelineBenchResult[]; throughput?: BenchReport['throughput']; sd15?: Sd15Report; sdxl?: SdxlReport; flux?: FluxReport },
  options: BenchOptions,
  loadAtStart: number,
): BenchReport {
  const { pipeline, throughput, sd15, sdxl, flux } = measured;
  const round = (x: number, digits = 4) => Number(x.toFixed(digits));
  const figures: Partial<BenchReport> = {};
  const ratios: Record<string, number> = {};
  if (pipeline) {
    figures.pipeline_overhead_share = Object.fromEntries(pipeline.map((p) => [p.model, round(p.overheadShare)]));
    figures.steps_per_second = Object.fromEntries(pipeline.map((p) => [p.model, round(p.stepsPerSecond, 2)]));
    for (const p of pipeline) ratios[`${p.model}_step_over_onnxruntime`] = round(p.stepOverOnnxruntime);
  }
  if (throughput) {
    figures.throughput_images_per_second = {};
    for (const section of throughput) {
      const model = section.job.model;
      const ips = (c: number, batching: boolean) => pointOf(section.points, c, batching).imagesPerSecond;
      const table: Record<string, number> = {};
      for (const batching of [true, false]) {
        for (const c of BENCH_CONCURRENCY) {
          const name = `c${c}${batching ? '' : '_nobatch'}`;
          const point = pointOf(section.points, c, batching);
          table[name] = round(point.imagesPerSecond, 3);
          table[`${name}_p50_ms`] = round(point.p50LatencyMs, 1);
          table[`${name}_p95_ms`] = round(point.p95LatencyMs, 1);
        }
      }
      for (const c of BENCH_CONCURRENCY) ratios[`${model}_c${c}_batch_over_nobatch`] = round(ips(c, true) / ips(c, false), 3);
      for (const c of BENCH_CONCURRENCY.slice(1)) {
        ratios[`${model}_c${c}_over_c1`] = round(ips(c, true) / ips(1, true), 3);
        ratios[`${model}_c${c}_over_c1_nobatch`] = round(ips(c, false) / ips(1, false), 3);
      }
      figures.throughput_images_per_second[model] = table;
    }
  }
  if (pipeline || throughput) figures.ratios = ratios;
  return {
    sections: options.sections,
    ...figures,
    pipeline,
    throughput,
    sd15,
    sdxl,
    flux,
    machine: {
      cpus: cpus().length,
      cpu_model: cpus()[0]?.model ?? 'unknown',
      execution_provider: 'cpu',
      intra_op_threads: options.threads,
      onnxruntime_node: ONNXRUNTIME_VERSION,
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
      date: new Date().toISOString(),
      quick: options.quick,
      load_average: [round(loadAtStart, 2), round(loadavg()[0], 2)],
    },
  };
}
