/**
 * The human-readable form of a BenchReport: plain-text tables of the figures and the ratios between them.
 */
import { EDGE_CHECK_GOAL_MS } from './edge-input-checks';
import type { BenchReport } from './run-benchmarks';
import type { GoalResult, Sd15Report } from './sd15/sd15-section';
import { formatSdxl } from './sdxl/sdxl-section';
import type { FluxReport } from './flux/flux-section';
import type { GgufReport } from './gguf/gguf-section';
import { EDGE_PHASES, EDGE_TARGETS, type EdgeReport } from './edge/edge-section';
import { BENCH_CONCURRENCY } from './run-benchmarks';
import { BATCHING } from './service-throughput';

/** Left-aligned first column, right-aligned others, two spaces between columns. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Render the report (multi-line string, no trailing newline): a header line, then each section that ran. */
export function formatBenchReport(report: BenchReport): string {
  const m = report.machine;
  const parts = [
    `Benchmark (${m.quick ? 'quick' : 'full'} run: ${report.sections.join(', ')}) — ${m.cpus} CPUs (${m.cpu_model}), ${m.execution_provider} execution provider, ` +
      `onnxruntime-node ${m.onnxruntime_node}, Node ${m.node}, ${m.date}, load average ${m.load_average[0]} → ${m.load_average[1]}`,
  ];
  if (report.pipeline) parts.push('', formatPipeline(report.pipeline));
  if (report.throughput && report.throughput_images_per_second) parts.push('', formatThroughput(report.throughput, report.throughput_images_per_second));
  if (report.ort) parts.push('', formatOrt(report.ort));
  if (report.edge) parts.push('', formatEdge(report.edge));
  if (report.sd15) parts.push('', formatSd15(report.sd15));
  if (report.sdxl) parts.push('', formatSdxl(report.sdxl));
  if (report.flux) parts.push('', formatFlux(report.flux));
  if (report.gguf) parts.push('', formatGguf(report.gguf));
  if (report.edge_path) parts.push('', formatEdgePath(report.edge_path));
  return parts.join('\n');
}

function formatPipeline(pipeline: NonNullable<BenchReport['pipeline']>): string {
  const pipelineRows = pipeline.map((p) => [
    p.model,
    `${p.width}x${p.height}`,
    p.stepsPerSecond.toFixed(2),
    p.breakdownMs.step.toFixed(2),
    p.breakdownMs.onnxruntime.toFixed(2),
    p.stepOverOnnxruntime.toFixed(3),
    `${(p.overheadShare * 100).toFixed(2)}%`,
  ]);
  const breakdownRows = pipeline.map((p) => [
    p.model,
    p.breakdownMs.beforeUnet.toFixed(3),
    p.breakdownMs.onnxWrapper.toFixed(3),
    p.breakdownMs.afterUnet.toFixed(3),
    p.generateMs.toFixed(0),
  ]);
  return [
    'Denoising step: euler, cfg 7 (conditional + unconditional in one UNet run), one image; window = steps 2..N',
    table(['model', 'size', 'steps/s', 'ms/step', 'ort ms/step', 'step/ort', 'outside ort'], pipelineRows),
    '',
    'Outside onnxruntime, ms per step: before UNet = CFG sample x·c_in + feeds; ort tensors = OnnxModel.run conversion;',
    'after UNet = guidance + sampler update + callback.  generate() = one whole image incl. prompt encoding and VAE decode, ms',
    table(['model', 'before UNet', 'ort tensors', 'after UNet', 'generate()'], breakdownRows),
  ].join('\n');
}

function formatThroughput(sections: NonNullable<BenchReport['throughput']>, figures: NonNullable<BenchReport['throughput_images_per_second']>): string {
  const parts: string[] = [];
  for (const section of sections) {
    const t = figures[section.job.model];
    const jobsPerRun = (c: number) => {
      const mean = section.points.find((p) => p.concurrency === c && p.batching)?.meanJobsPerRun;
      return mean == null ? 'n/a' : mean.toFixed(2);
    };
    const ms = (c: number, suffix: string) => `${t[`c${c}${suffix}_p50_ms`].toFixed(1)} / ${t[`c${c}${suffix}_p95_ms`].toFixed(1)}`;
    const rows = BENCH_CONCURRENCY.map((c) => [
      `c${c}`,
      t[`c${c}`].toFixed(2),
      t[`c${c}_nobatch`].toFixed(2),
      (t[`c${c}`] / t[`c${c}_nobatch`]).toFixed(2),
      ms(c, ''),
      ms(c, '_nobatch'),
      (t[`c${c}`] / t.c1).toFixed(2),
      jobsPerRun(c),
    ]);
    const job = section.job;
    if (parts.length) parts.push('');
    parts.push(
      `GPU service throughput: ${job.model} ${job.width}x${job.height}, ${job.steps} steps, euler, cfg ${job.cfgScale}, PNG, ` +
        `closed-loop clients; batch = MAX_BATCH ${BATCHING.maxBatch}, BATCH_WINDOW_MS ${BATCHING.batchWindowMs}; nobatch = MAX_BATCH 1; ` +
        `${section.images_compared} batched images compared with unbatched, ${section.images_differing} differ`,
      table(['concurrency', 'batch img/s', 'nobatch img/s', 'batch/nobatch', 'batch p50/p95 ms', 'nobatch p50/p95 ms', 'cN/c1 batch', 'jobs/run (batch)'], rows),
    );
  }
  return parts.join('\n');
}

function formatOrt(ort: NonNullable<BenchReport['ort']>): string {
  return [
    'onnxruntime settings: bench-512 UNet at 256x256 with CFG (batch 2), CPU; one change from the defaults per row; best round\'s median',
    table(
      ['setting', 'ms per UNet run', 'vs defaults'],
      ort.map((v) => [v.name, v.msPerRun.toFixed(1), v.overDefault.toFixed(3)]),
    ),
  ].join('\n');
}

function formatEdge(edge: NonNullable<BenchReport['edge']>): string {
  return [
    `Edge input checks: CPU ms per call (${edge[0]?.cpu_clock === 'process' ? 'whole process, user + system' : 'the calling thread'}) on the largest inputs allowed; goal: median ≤ ${EDGE_CHECK_GOAL_MS} ms per check`,
    table(
      ['check', 'input bytes', 'median ms', 'max ms', 'goal'],
      edge.map((r) => [r.name, String(r.input_bytes), r.cpu_ms_median.toFixed(1), r.cpu_ms_max.toFixed(1), r.goal ? (r.cpu_ms_median <= EDGE_CHECK_GOAL_MS ? 'met' : 'MISSED') : '—']),
    ),
  ].join('\n');
}

function formatSd15(r: Sd15Report): string {
  const gb = (bytes: number) => `${(bytes / 1e9).toFixed(2)} GB`;
  const s = (seconds: number) => `${seconds.toFixed(1)} s`;
  const met = (g: GoalResult) => (g.met ? 'met' : 'MISSED');
  const step = r.large_step;
  const att = step.largest_attention;
  const image = r.image;
  const [small, large] = Object.keys(r.unet_ms_per_cfg_step);
  const rows = [
    ['first load: conversion (hash, graphs, weights)', `${s(r.conversion.seconds)} (CPU ${s(r.conversion.cpuSeconds)})`, '', ''],
    ['first load: first open (optimize for CPU, save, open)', `${s(r.first_open.seconds)} (optimizing ${s(r.first_open.optimizationSeconds)})`, '', ''],
    ['first load, total', s(r.first_load_seconds), '', ''],
    ['cached load (fresh process)', `${s(r.cached_load.seconds)} (CPU ${s(r.cached_load.cpuSeconds)})`, r.goals.cached_load_seconds.goal, met(r.goals.cached_load_seconds)],
    [
      'peak RSS while converting',
      `${gb(r.conversion.maxRssBytes)} = ${r.conversion.peak_rss_over_checkpoint.toFixed(2)}× checkpoint`,
      r.goals.conversion_peak_rss.goal,
      met(r.goals.conversion_peak_rss),
    ],
    ['peak RSS first open / cached load', `${gb(r.first_open.maxRssBytes)} / ${gb(r.cached_load.maxRssBytes)}`, '', ''],
    [`UNet ms per CFG step (batch 2), ${small}x${small}`, `${r.unet_ms_per_cfg_step[small].toFixed(0)} ms`, '', ''],
    [`UNet ms per CFG step (batch 2), ${large}x${large}`, `${r.unet_ms_per_cfg_step[large].toFixed(0)} ms`, '', ''],
    [
      `peak RSS during the ${step.size}x${step.size} step`,
      `${gb(step.peak_rss_bytes)} (${step.peak_during_step ? '' : '≤ '}+${gb(step.step_peak_above_loaded_bytes)} over the loaded model)`,
      '',
      '',
    ],
    [`one image ${image.width}x${image.height}, ${image.steps} steps (generate())`, s(image.generateMs / 1000), '', ''],
    [`outside onnxruntime (${image.width}x${image.height}, steps 2..${image.steps})`, `${(image.overheadShare * 100).toFixed(3)} %`, r.goals.outside_onnxruntime.goal, met(r.goals.outside_onnxruntime)],
    [`LoRA rank ${r.lora.file.rank} (${r.lora.file.modules} modules, ${r.lora.method}): first set (${r.lora.method === 'branches' ? 'branched graphs optimized and saved: once per host' : 'reads base weights once'})`, `${s(r.lora.firstSetSeconds)} (CPU ${s(r.lora.firstSetCpuSeconds)})`, '', ''],
    ...(r.lora.firstSetReopenSeconds !== undefined ? [['LoRA: first set in a fresh process state (saved branched graphs opened)', s(r.lora.firstSetReopenSeconds), '', '']] : []),
    ['LoRA: switch to another set', `${r.lora.switchSeconds.toFixed(2)} s (CPU ${r.lora.switchCpuSeconds.toFixed(2)} s)`, r.goals.lora_switch_seconds.goal, met(r.goals.lora_switch_seconds)],
    ['LoRA: a request re-using a built set', `${(r.lora.reuseSeconds * 1000).toFixed(2)} ms`, r.goals.lora_reuse_seconds.goal, met(r.goals.lora_reuse_seconds)],
    [`LoRA: UNet ms per CFG step ${r.lora.size}x${r.lora.size}, base / with the LoRA`, `${r.lora.unetMsBase.toFixed(0)} / ${r.lora.unetMsVariant.toFixed(0)} ms`, '', ''],
    ['LoRA: peak RSS with two sets built', gb(r.lora.maxRssBytes), '', ''],
  ];
  return [
    `SD 1.5 checkpoint engine: ${gb(r.checkpoint.bytes)} ${r.checkpoint.dtype} single file (random weights), CPU provider, float32 graphs, ` +
      `fused attention; load average ${r.load_average.map((l) => l.toFixed(1)).join(' → ')}`,
    table(['measure', 'value', 'goal', ''], rows),
    `Largest self-attention at ${step.size}x${step.size}: level ${att.level}, ${att.heads} heads × ${att.tokens} tokens; its whole float32 score ` +
      `matrix (batch 2) would be ${gb(att.fullScoresBytes)}.`,
  ].join('\n');
}

function formatFlux(f: FluxReport): string {
  const gb = (b: number) => `${(b / 1e9).toFixed(2)} GB`;
  const s = f.shape;
  return [
    `FLUX.1 transformer, width ${s.hiddenSize}, ${s.depth} double + ${s.depthSingleBlocks} single blocks (${(f.parameters / 1e9).toFixed(2)} B parameters, BF16 file ${gb(f.checkpoint.bytes)})`,
    table(
      ['figure', 'value'],
      [
        ['conversion (float32 graph + weights)', `${f.conversion.seconds.toFixed(1)} s`],
        ['conversion peak RSS', `${gb(f.conversion.peak_rss_bytes)} (${f.conversion.peak_rss_over_checkpoint.toFixed(2)}× the file)`],
        [`transformer step at ${f.step.size}², ${f.step.text_tokens} text tokens`, `${f.step.ms_fastest.toFixed(0)} ms`],
        ['session open', `${f.step.open_seconds.toFixed(1)} s`],
        ['RSS loaded / peak during steps', `${gb(f.step.rss_loaded_bytes)} / ${gb(f.step.peak_rss_bytes)}`],
      ],
    ),
  ].join('\n');
}

function formatGguf(r: GgufReport): string {
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
  const s = r.shape;
  return [
    `GGUF FLUX.1 transformer, width ${s.hiddenSize}, ${s.depth} double + ${s.depthSingleBlocks} single blocks (${(r.parameters / 1e9).toFixed(2)} B parameters), step at ${s.size}², ${s.textTokens} text tokens; load average ${r.load_average.map((l) => l.toFixed(2)).join(' → ')}`,
    table(
      ['file', 'Linear weights', 'file size', 'conversion', 'conversion peak RSS', 'graph', 'session open', 'RSS loaded', 'step peak RSS', 'ms / step'],
      r.rows.map((row) => [
        row.type,
        row.mode,
        gib(row.file_bytes),
        `${row.conversion_seconds.toFixed(1)} s`,
        gib(row.conversion_peak_rss_bytes),
        gib(row.graph_bytes),
        `${row.open_seconds.toFixed(1)} s`,
        gib(row.rss_loaded_bytes),
        gib(row.step_peak_rss_bytes),
        row.ms_fastest.toFixed(0),
      ]),
    ),
  ].join('\n');
}

function formatEdgePath(e: EdgeReport): string {
  const j = e.job;
  const latencyRows = EDGE_TARGETS.map((t) => [
    t,
    e.latency[t].p50_ms.toFixed(1),
    e.latency[t].p90_ms.toFixed(1),
    e.latency[t].mean_ms.toFixed(1),
    t === 'direct' ? '' : `+${(t === 'edge' ? e.edge_added_p50_ms : e.edge_limited_added_p50_ms).toFixed(1)}`,
    (e.latency[t].p50_ms / e.latency.direct.p50_ms).toFixed(2),
  ]);
  const phaseRows = EDGE_PHASES.map((phase) => [
    phase,
    `${e.phases.edge[phase].p50_ms.toFixed(2)} / ${e.phases.edge[phase].mean_ms.toFixed(2)}`,
    `${e.phases.edge_limited[phase].p50_ms.toFixed(2)} / ${e.phases.edge_limited[phase].mean_ms.toFixed(2)}`,
  ]);
  return [
    `Edge critical path (local stack: npm start): ${j.model} ${j.width}x${j.height}, ${j.steps} step, ${j.response_format}, one request at a time; ` +
      `${e.requests} timed requests per column after ${e.warmup} warm-up, interleaved; edge image equals the direct one: ${e.image_matches_direct ? 'yes' : 'NO'}; ` +
      `load average ${e.load_average.join(' → ')}`,
    table(['column', 'p50 ms', 'p90 ms', 'mean ms', 'added p50 ms', 'p50 / direct'], [
      ...latencyRows,
      ['GET /healthz (hop)', e.hop.p50_ms.toFixed(1), e.hop.p90_ms.toFixed(1), e.hop.mean_ms.toFixed(1), '', ''],
    ]),
    '',
    `Edge phases from Server-Timing, ms (median / mean); task-row D1 calls the response waited for: ${e.phases.edge.db_calls} (edge), ${e.phases.edge_limited.db_calls} (limited key)`,
    table(['phase', 'edge', 'edge, key with limits'], phaseRows),
  ].join('\n');
}
