/**
 * The `sdxl` section of `npm run bench` (issue 14): the checkpoint engine on a real-size SDXL 1.0 base single file
 * (sd15/sd15-checkpoint.ts `SDXL_BENCH_CHECKPOINT`: UNet, VAE, CLIP-L + OpenCLIP bigG, F16, deterministic random
 * weights, never committed) on the CPU execution provider, every figure from one run, each measurement in a child
 * process of its own (sd15/sd15-child.ts, the sd15 section's tasks) so its peak RSS is its own:
 * - conversion (hashing, detection, graphs and float32 weights into a fresh cache) and its peak RSS;
 * - the first open (onnxruntime optimizes the graphs for the CPU provider and saves them, then opens them);
 * - UNet ms per classifier-free-guidance step (batch 2, with text_embeds and time ids) at each size, one step each
 *   (after a 64×64 step that makes every weight page resident), and the peak RSS during it.
 * Opt-in (`--only sdxl`): running the float32 SDXL UNet takes about 10 GB of memory.
 */
import { rm } from 'node:fs/promises';
import { loadavg } from 'node:os';
import type { SyntheticCheckpoint } from '../../checkpoints/synthetic-checkpoint';
import type { LoadFigures, Sd15ChildRequest, Sd15ChildResult } from '../sd15/sd15-child';
import { ensureSd15Checkpoint, SDXL_BENCH_CHECKPOINT } from '../sd15/sd15-checkpoint';
import { runChild } from '../sd15/sd15-section';

/** How much work the section does: the square sizes (pixels) of its UNet steps. */
export interface SdxlSizes {
  unetSizes: number[];
}

/** The section's report (snake_case, as the rest of the bench JSON). */
export interface SdxlReport {
  checkpoint: { bytes: number; dtype: string; generated: boolean; generation_seconds: number };
  conversion: LoadFigures & { peak_rss_over_checkpoint: number };
  first_open: LoadFigures;
  /** Conversion + first open, seconds. */
  first_load_seconds: number;
  /** UNet ms per CFG step (batch 2), by size in pixels. */
  unet_ms_per_cfg_step: Record<string, number>;
  /** Peak RSS of the process during each size's step, bytes, and what the step added over the loaded model. */
  unet_step_peak_rss_bytes: Record<string, number>;
  unet_step_peak_above_loaded_bytes: Record<string, number>;
  /** 1-minute load average at the section's start, after each child, and at its end. */
  load_average: number[];
}

/** Options of one section run. */
export interface SdxlSectionOptions {
  modelsDir: string;
  threads: number;
  sizes: SdxlSizes;
  /** The checkpoint to write (default: real-size SDXL base; tests pass a small one). */
  checkpoint?: Readonly<SyntheticCheckpoint>;
}

/**
 * Run the section.
 * @param log progress lines (stderr in the CLI).
 * @throws Error when a child fails, or when a load that must convert (or must not) did otherwise.
 */
export async function runSdxlSection(options: SdxlSectionOptions, log: (line: string) => void): Promise<SdxlReport> {
  const load_average = [loadavg()[0]];
  const spec = options.checkpoint ?? SDXL_BENCH_CHECKPOINT;
  log('sdxl: writing the checkpoint (reused when --models-dir already holds it)');
  const files = await ensureSd15Checkpoint(options.modelsDir, spec, 'sdxl');
  log(`sdxl: checkpoint ${(files.checkpointBytes / 1e9).toFixed(2)} GB ${files.generated ? `written in ${files.generationSeconds.toFixed(0)} s` : 'reused'}`);
  await rm(files.cacheDir, { recursive: true, force: true });

  const base = { modelsDir: options.modelsDir, threads: options.threads, section: 'sdxl' as const };
  const child = async (request: Sd15ChildRequest): Promise<Sd15ChildResult> => {
    const result = await runChild(request);
    load_average.push(result.loadAverage);
    return result;
  };
  log('sdxl: converting (child process)');
  const convert = await child({ ...base, task: 'convert' });
  if (!convert.load.converted) throw new Error('sdxl: the conversion found a cache entry in an emptied cache');
  log(`sdxl: converted in ${convert.load.seconds.toFixed(1)} s, peak RSS ${(convert.load.maxRssBytes / 1e9).toFixed(2)} GB`);
  const first = await child({ ...base, task: 'first-open' });
  if (first.load.converted) throw new Error('sdxl: the first open converted again');
  if (first.load.optimizationError) throw new Error(`sdxl: ${first.load.optimizationError}`);
  log(`sdxl: first open in ${first.load.seconds.toFixed(1)} s`);
  const ms: Record<string, number> = {};
  const peak: Record<string, number> = {};
  const added: Record<string, number> = {};
  for (const size of options.sizes.unetSizes) {
    log(`sdxl: one UNet CFG step at ${size}x${size} (child process)`);
    const step = (await child({ ...base, task: 'large-step', largeSize: size })).large!;
    ms[size] = step.ms[0];
    peak[size] = step.maxRssAfterBytes;
    added[size] = Math.max(0, step.maxRssAfterBytes - step.rssBeforeBytes);
  }
  load_average.push(loadavg()[0]);
  return {
    checkpoint: { bytes: files.checkpointBytes, dtype: spec.dtype, generated: files.generated, generation_seconds: files.generationSeconds },
    conversion: { ...convert.load, peak_rss_over_checkpoint: convert.load.maxRssBytes / files.checkpointBytes },
    first_open: first.load,
    first_load_seconds: convert.load.seconds + first.load.seconds,
    unet_ms_per_cfg_step: ms,
    unet_step_peak_rss_bytes: peak,
    unet_step_peak_above_loaded_bytes: added,
    load_average,
  };
}

/** The section's rows for the bench's text report. */
export function formatSdxl(r: SdxlReport): string {
  const gb = (b: number) => `${(b / 1e9).toFixed(2)} GB`;
  const rows: Array<[string, string]> = [
    ['checkpoint', `${gb(r.checkpoint.bytes)} ${r.checkpoint.dtype}${r.checkpoint.generated ? ` (written in ${r.checkpoint.generation_seconds.toFixed(0)} s)` : ' (reused)'}`],
    ['conversion (hash, graphs, weights into the cache)', `${r.conversion.seconds.toFixed(1)} s (CPU ${r.conversion.cpuSeconds.toFixed(1)} s)`],
    ['peak RSS while converting', `${gb(r.conversion.maxRssBytes)} = ${r.conversion.peak_rss_over_checkpoint.toFixed(2)}x the checkpoint`],
    ['first open (optimize for CPU, save, open)', `${r.first_open.seconds.toFixed(1)} s`],
  ];
  for (const size of Object.keys(r.unet_ms_per_cfg_step)) {
    rows.push([`UNet ms per CFG step (batch 2), ${size}x${size}`, `${r.unet_ms_per_cfg_step[size].toFixed(0)} ms (peak RSS ${gb(r.unet_step_peak_rss_bytes[size])}, step added ${gb(r.unet_step_peak_above_loaded_bytes[size])})`]);
  }
  return ['sdxl (checkpoint engine, real-size SDXL base, CPU provider, float32 graphs)', ...rows.map(([k, v]) => `  ${k}: ${v}`)].join('\n');
}
