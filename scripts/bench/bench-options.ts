/**
 * Command-line options of `npm run bench` (scripts/bench/index.ts) and the run sizes they select.
 */
import { parseArgs } from 'node:util';
import type { Sd15Sizes } from './sd15/sd15-section';
import type { SdxlSizes } from './sdxl/sdxl-section';
import type { OrtSizes } from './ort-settings';
import type { EdgeSizes } from './edge/edge-section';

/**
 * The sections of a run: `pipeline` (step overhead on tiny-analytic and bench-512), `throughput` (the GPU service
 * under load), `ort` (onnxruntime session settings on the bench-512 UNet), `edge` (CPU of the edge's input checks
 * on the largest inputs allowed: seconds), `sd15` (the checkpoint engine on a real-size SD 1.5: minutes), `sdxl`
 * (the same on a real-size SDXL base: opt-in with --only, it needs about 10 GB of memory), `flux` (opt-in: a
 * reduced-depth, real-width FLUX.1 transformer: conversion peak RSS and ms per step at 512²; scripts/bench/flux/),
 * `gguf` (opt-in: the same transformer as Q8_0 / Q4_0 GGUF, dequantized vs kept quantized as MatMulNBits:
 * memory and ms per step; scripts/bench/gguf/),
 * `edge-path` (opt-in, also `--edge`: the edge's critical path on the local stack, a generation through the edge
 * against the same job sent straight to the GPU service, with the edge's per-phase breakdown; scripts/bench/edge/),
 * `throughput-sd15` (opt-in: the throughput section's points on the real-size SD 1.5 architecture through the
 * checkpoint engine at 256²: tens of minutes on 2 cores, two loaded copies ≈ 10 GB).
 */
export const BENCH_SECTIONS = ['pipeline', 'throughput', 'ort', 'edge', 'sd15', 'sdxl', 'flux', 'gguf', 'edge-path', 'throughput-sd15'] as const;
export type BenchSection = (typeof BENCH_SECTIONS)[number];
/** The sections a run without --only does (sdxl is opt-in). */
export const DEFAULT_BENCH_SECTIONS: readonly BenchSection[] = ['pipeline', 'throughput', 'ort', 'edge', 'sd15'];

/** Parsed options. */
export interface BenchOptions {
  /** Print one JSON object on stdout instead of the table (logs always go to stderr). */
  json: boolean;
  /** A short run (seconds, not minutes) with fewer steps and jobs; noisier figures. */
  quick: boolean;
  /** Write the generated models here and keep them; default: a temporary folder removed afterwards. */
  modelsDir?: string;
  /** onnxruntime intra-op threads (0 = onnxruntime's default, as the service's default). */
  threads: number;
  /** The sections to run, in BENCH_SECTIONS order (default: DEFAULT_BENCH_SECTIONS). */
  sections: BenchSection[];
  /** flux and gguf sections: the transformer's width (multiple of 128; default FLUX.1's 3072). */
  fluxWidth: number;
  /** flux and gguf sections: the image side in pixels (multiple of 16; default 512). */
  fluxSize: number;
  help: boolean;
}

/** How much work one run does. */
export interface BenchSizes {
  /** Steps per timed job and timed jobs, per model. */
  tinySteps: number;
  benchSteps: number;
  repeats: number;
  /** A throughput point runs until at least this many jobs are answered and this many seconds have passed. */
  pointMinJobs: number;
  pointMinSeconds: number;
  /** Steps of a throughput job on tiny-analytic and on bench-512 (at 256²). */
  throughputSteps: number;
  benchThroughputSteps: number;
  /** Rounds over all throughput points (interleaved); each point reports its best round. */
  throughputRounds: number;
  /** throughput-sd15: steps per job (at 256²), rounds, jobs per point, untimed warm-up jobs per service. */
  sd15Throughput: { steps: number; rounds: number; minJobs: number; warmUpJobs: number };
  sd15: Sd15Sizes;
  sdxl: SdxlSizes;
  ort: OrtSizes;
  /** Timed FLUX transformer steps (after one untimed). */
  fluxRepeats: number;
  /** Timed calls per edge input check. */
  edgeRepeats: number;
  /** edge-path section: timed and warm-up requests per column. */
  edgePath: EdgeSizes;
}

/** The sizes of a full run and of a --quick run. */
export function benchSizes(quick: boolean): BenchSizes {
  return quick
    ? {
        tinySteps: 6,
        benchSteps: 4,
        repeats: 1,
        pointMinJobs: 8,
        pointMinSeconds: 0.3,
        throughputSteps: 8,
        benchThroughputSteps: 2,
        throughputRounds: 1,
        sd15Throughput: { steps: 1, rounds: 1, minJobs: 8, warmUpJobs: 0 },
        // The checkpoint, conversion and first open cost the same in a quick run; only the timed work shrinks.
        sd15: { unetSize: 256, unetRepeats: 1, largeSize: 512, image: { size: 256, steps: 3, repeats: 1 }, loraRank: 32 },
        sdxl: { unetSizes: [512, 1024] },
        ort: { latent: 32, runs: 2, rounds: 1 },
        fluxRepeats: 1,
        edgeRepeats: 3,
        edgePath: { requests: 40, warmup: 5 },
      }
    : {
        tinySteps: 30,
        benchSteps: 10,
        repeats: 3,
        pointMinJobs: 24,
        pointMinSeconds: 2,
        throughputSteps: 20,
        benchThroughputSteps: 4,
        throughputRounds: 3,
        sd15Throughput: { steps: 4, rounds: 1, minJobs: 8, warmUpJobs: 2 },
        sd15: { unetSize: 256, unetRepeats: 3, largeSize: 512, image: { size: 256, steps: 8, repeats: 2 }, loraRank: 32 },
        sdxl: { unetSizes: [512, 1024] },
        ort: { latent: 32, runs: 7, rounds: 3 },
        fluxRepeats: 3,
        edgeRepeats: 9,
        edgePath: { requests: 300, warmup: 20 },
      };
}

/** Usage text. */
export const BENCH_USAGE = `usage: npm run bench -- [--json] [--quick] [--only SECTIONS] [--edge] [--models-dir DIR] [--threads N]
  --json            print one JSON object on stdout (progress goes to stderr); with npm use
                    \`npm run -s bench -- --json\` so npm's own banner stays off stdout
  --quick           a short run (fewer steps, jobs and repeats; noisier figures); sd15 still
                    writes, converts and loads the real-size model (minutes)
  --only SECTIONS   comma-separated: ${BENCH_SECTIONS.join(', ')} (default: ${DEFAULT_BENCH_SECTIONS.join(', ')});
                    e.g. --only sd15; sdxl (real-size SDXL base, ~10 GB of memory), flux, gguf,
                    edge-path and throughput-sd15 (the throughput points on the real-size SD 1.5
                    architecture at 256²: tens of minutes, ~10 GB) run only when named
  --edge            the edge-path section: starts the local stack (npm start) and times a 64², 1-step
                    b64_json generation through the edge against the same job sent straight to the
                    GPU service, interleaved, with the edge's Server-Timing phases; alone it runs
                    only that section, with --only it adds it to the named ones
  --models-dir DIR  write the generated models (tiny-analytic, bench-512, the 2.1 GB SD 1.5
                    checkpoint) here and keep them, so the next run reuses them (sd15's
                    conversion cache, about 10 GB, stays too and is emptied at its next run)
  --threads N       onnxruntime intra-op threads (default 0: onnxruntime's choice)
  --flux-size N     flux and gguf sections: image side in pixels, a multiple of 16 (default 512)
  --flux-width N    flux and gguf sections: transformer width, a multiple of 128 (default 3072, FLUX.1's;
                    2 double + 4 single blocks at 3072 are 1.3 B parameters: 2.6 GB BF16 file,
                    5.2 GB of float32 weights)`;

/**
 * Parse argv (without node and script).
 * @throws Error (with the usage text) for an unknown flag, a bad --threads value or an unknown --only section.
 */
export function parseBenchOptions(argv: string[]): BenchOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        json: { type: 'boolean', default: false },
        quick: { type: 'boolean', default: false },
        'models-dir': { type: 'string' },
        threads: { type: 'string', default: '0' },
        only: { type: 'string' },
        'flux-width': { type: 'string', default: '3072' },
        'flux-size': { type: 'string', default: '512' },
        edge: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${BENCH_USAGE}`);
  }
  const threads = Number(values.threads);
  if (!Number.isInteger(threads) || threads < 0) throw new Error(`--threads must be an integer ≥ 0, got "${values.threads}"\n${BENCH_USAGE}`);
  const named = values.only === undefined ? (values.edge ? [] : [...DEFAULT_BENCH_SECTIONS]) : parseSections(values.only);
  const sections = BENCH_SECTIONS.filter((s) => named.includes(s) || (s === 'edge-path' && values.edge));
  const fluxWidth = Number(values['flux-width']);
  if (!Number.isInteger(fluxWidth) || fluxWidth < 128 || fluxWidth % 128 !== 0) throw new Error(`--flux-width must be a positive multiple of 128, got "${values['flux-width']}"\n${BENCH_USAGE}`);
  const fluxSize = Number(values['flux-size']);
  if (!Number.isInteger(fluxSize) || fluxSize < 16 || fluxSize % 16 !== 0) throw new Error(`--flux-size must be a positive multiple of 16, got "${values['flux-size']}"\n${BENCH_USAGE}`);
  return { json: values.json, quick: values.quick, modelsDir: values['models-dir'], threads, sections, fluxWidth, fluxSize, help: values.help };
}

function parseSections(list: string): BenchSection[] {
  const named = list.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = named.filter((s) => !(BENCH_SECTIONS as readonly string[]).includes(s));
  if (named.length === 0 || unknown.length > 0) {
    throw new Error(`--only takes a comma-separated list of ${BENCH_SECTIONS.join(', ')}; got "${list}"\n${BENCH_USAGE}`);
  }
  return BENCH_SECTIONS.filter((s) => named.includes(s));
}
