/**
 * `npm run bench`: pipeline overhead and steps per second on the analytic tiny model and the generated
 * bench-512 model, GPU-service throughput at concurrency 1, 4 and 8 with batching on and off
 * (issue 3 part 6, issue 5 part 9), and the checkpoint engine on a real-size SD 1.5 (issue 12 item 7:
 * conversion, cached load, peak RSS, UNet step times, one image). Prints tables on stdout, or with --json
 * one JSON object on stdout; progress always goes to stderr. Options: bench-options.ts (BENCH_USAGE),
 * `--only` picks sections.
 */
import { BENCH_USAGE, parseBenchOptions } from './bench-options';
import { formatBenchReport } from './report-table';
import { runBenchmarks } from './run-benchmarks';

async function main(argv: string[]): Promise<void> {
  const options = parseBenchOptions(argv);
  if (options.help) {
    console.log(BENCH_USAGE);
    return;
  }
  const log = (line: string) => process.stderr.write(`bench: ${line}\n`);
  const report = await runBenchmarks(options, log);
  process.stdout.write(options.json ? `${JSON.stringify(report)}\n` : `${formatBenchReport(report)}\n`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
