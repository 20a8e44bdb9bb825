/**
 * The human-readable form of a BenchReport: plain-text tables of the figures and the ratios between them.
 */
import type { BenchReport } from './run-benchmarks';
import { BENCH_CONCURRENCY } from './run-benchmarks';
import { BATCHING } from './service-throughput';

/** Left-aligned first column, right-aligned others, two spaces between columns. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Render the report (multi-line string, no trailing newline). */
export function formatBenchReport(report: BenchReport): string {
  const m = report.machine;
  const pipelineRows = report.pipeline.map((p) => [
    p.model,
    `${p.width}x${p.height}`,
    p.stepsPerSecond.toFixed(2),
    p.breakdownMs.step.toFixed(2),
    p.breakdownMs.onnxruntime.toFixed(2),
    p.stepOverOnnxruntime.toFixed(3),
    `${(p.overheadShare * 100).toFixed(2)}%`,
  ]);
  const breakdownRows = report.pipeline.map((p) => [
    p.model,
    p.breakdownMs.beforeUnet.toFixed(3),
    p.breakdownMs.onnxWrapper.toFixed(3),
    p.breakdownMs.afterUnet.toFixed(3),
    p.generateMs.toFixed(0),
  ]);
  const t = report.throughput_images_per_second;
  const jobsPerRun = (c: number) => {
    const mean = report.throughput.points.find((p) => p.concurrency === c && p.batching)?.meanJobsPerRun;
    return mean == null ? 'n/a' : mean.toFixed(2);
  };
  const throughputRows = BENCH_CONCURRENCY.map((c) => [
    `c${c}`,
    t[`c${c}`].toFixed(2),
    t[`c${c}_nobatch`].toFixed(2),
    (t[`c${c}`] / t[`c${c}_nobatch`]).toFixed(2),
    (t[`c${c}`] / t.c1).toFixed(2),
    (t[`c${c}_nobatch`] / t.c1_nobatch).toFixed(2),
    jobsPerRun(c),
  ]);
  const job = report.throughput.job;
  return [
    `Benchmark (${m.quick ? 'quick' : 'full'} run) — ${m.cpus} CPUs (${m.cpu_model}), ${m.execution_provider} execution provider, ` +
      `onnxruntime-node ${m.onnxruntime_node}, Node ${m.node}, ${m.date}, load average ${m.load_average[0]} → ${m.load_average[1]}`,
    '',
    'Denoising step: euler, cfg 7 (conditional + unconditional in one UNet run), one image; window = steps 2..N',
    table(['model', 'size', 'steps/s', 'ms/step', 'ort ms/step', 'step/ort', 'outside ort'], pipelineRows),
    '',
    'Outside onnxruntime, ms per step: before UNet = CFG sample x·c_in + feeds; ort tensors = OnnxModel.run conversion;',
    'after UNet = guidance + sampler update + callback.  generate() = one whole image incl. prompt encoding and VAE decode, ms',
    table(['model', 'before UNet', 'ort tensors', 'after UNet', 'generate()'], breakdownRows),
    '',
    `GPU service throughput: ${job.model} ${job.width}x${job.height}, ${job.steps} steps, euler, cfg ${job.cfgScale}, PNG, ` +
      `closed-loop clients; batch = MAX_BATCH ${BATCHING.maxBatch}, BATCH_WINDOW_MS ${BATCHING.batchWindowMs}; nobatch = MAX_BATCH 1`,
    table(['concurrency', 'batch img/s', 'nobatch img/s', 'batch/nobatch', 'cN/c1 batch', 'cN/c1 nobatch', 'jobs/run (batch)'], throughputRows),
  ].join('\n');
}
