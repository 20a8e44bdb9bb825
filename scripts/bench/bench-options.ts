/**
 * Command-line options of `npm run bench` (scripts/bench/index.ts) and the run sizes they select.
 */
import { parseArgs } from 'node:util';

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
  /** Steps of a throughput job. */
  throughputSteps: number;
  /** Rounds over all throughput points (interleaved); each point reports its best round. */
  throughputRounds: number;
}

/** The sizes of a full run and of a --quick run. */
export function benchSizes(quick: boolean): BenchSizes {
  return quick
    ? { tinySteps: 6, benchSteps: 4, repeats: 1, pointMinJobs: 8, pointMinSeconds: 0.3, throughputSteps: 8, throughputRounds: 1 }
    : { tinySteps: 30, benchSteps: 10, repeats: 3, pointMinJobs: 24, pointMinSeconds: 2, throughputSteps: 20, throughputRounds: 3 };
}

/** Usage text. */
export const BENCH_USAGE = `usage: npm run bench -- [--json] [--quick] [--models-dir DIR] [--threads N]
  --json            print one JSON object on stdout (progress goes to stderr); with npm use
                    \`npm run -s bench -- --json\` so npm's own banner stays off stdout
  --quick           a short run (fewer steps and jobs; noisier figures)
  --models-dir DIR  write the generated tiny-analytic and bench-512 models here and keep them
  --threads N       onnxruntime intra-op threads (default 0: onnxruntime's choice)`;

/**
 * Parse argv (without node and script).
 * @throws Error (with the usage text) for an unknown flag or a bad --threads value.
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
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${BENCH_USAGE}`);
  }
  const threads = Number(values.threads);
  if (!Number.isInteger(threads) || threads < 0) throw new Error(`--threads must be an integer ≥ 0, got "${values.threads}"\n${BENCH_USAGE}`);
  return { json: values.json, quick: values.quick, modelsDir: values['models-dir'], threads, help: values.help };
}
