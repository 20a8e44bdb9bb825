/**
 * The `sd15` section of `npm run bench` (issue 12 item 7): the checkpoint engine on a real-size Stable Diffusion 1.5
 * single file (sd15-checkpoint.ts) on the CPU execution provider, every figure from one run:
 * - first load = conversion (hashing, graphs and weights into a fresh conversion cache) + the first session open
 *   (onnxruntime optimizes the graphs for the CPU provider and saves them in the entry, then opens them);
 * - peak RSS while converting, against the checkpoint's size;
 * - the cached load in a fresh process;
 * - UNet ms per classifier-free-guidance step (batch 2) at 256² and 512²;
 * - one image's total time and the pipeline's share outside onnxruntime (pipeline-overhead.ts's method) at 256²;
 * - peak RSS during the 512² step, and what of it the step itself added over the loaded model;
 * - LoRA sets (issue 13): the first rank-32 set, a switch to another, a request re-using a built set, a UNet step with
 *   and without (sd15-child.ts `lora`).
 * Each measurement runs in a child process (sd15-child.ts) so its peak RSS is its own, and loads start cold in
 * onnxruntime; the page cache is warm (the files were just written), as on a host that has read them before.
 */
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { loadavg } from 'node:os';
import path from 'node:path';
import type { SyntheticCheckpoint } from '../../checkpoints/synthetic-checkpoint';
import type { PipelineBenchResult } from '../pipeline-overhead';
import type { AttentionSize, LoadFigures, LoraFigures, Sd15ChildRequest, Sd15ChildResult } from './sd15-child';
import { ensureSd15Checkpoint, SD15_BENCH_CHECKPOINT } from './sd15-checkpoint';

/** How much work the section does. */
export interface Sd15Sizes {
  /** Square size (pixels) of the small UNet step, and its timed repeats (after one untimed). */
  unetSize: number;
  unetRepeats: number;
  /** The large UNet step's size (one step: tens of seconds on 2 cores). */
  largeSize: number;
  /** Whole images: size, steps, timed repeats (after an untimed 3-step one); the fastest is reported. */
  image: { size: number; steps: number; repeats: number };
  /** Rank of the generated LoRAs of the LoRA-switch measurement (issue 13: 32). */
  loraRank: number;
}

/** The goals of issue 12 item 7. */
export const SD15_GOALS = {
  /** Share of step time outside onnxruntime, below. */
  outsideOnnxruntime: 0.01,
  /** Peak RSS while converting, at most this many times the checkpoint's size. */
  conversionPeakOverCheckpoint: 2,
  /** Cached load, seconds at most. */
  cachedLoadSeconds: 10,
  /** Switching to another LoRA set (rank 32), seconds at most (issue 13). */
  loraSwitchSeconds: 3,
  /** A request with a LoRA set already built pays nothing extra: seconds at most (bookkeeping only). */
  loraReuseSeconds: 0.01,
} as const;

/** One goal's figure and whether this run met it. */
export interface GoalResult {
  value: number;
  goal: string;
  met: boolean;
}

/** The section's report (snake_case, as the rest of the bench JSON). */
export interface Sd15Report {
  checkpoint: { bytes: number; dtype: string; generated: boolean; generation_seconds: number };
  conversion: LoadFigures & { peak_rss_over_checkpoint: number };
  first_open: LoadFigures;
  /** Conversion + first open, seconds. */
  first_load_seconds: number;
  cached_load: LoadFigures;
  /** UNet ms per CFG step (batch 2), fastest of the timed runs, by size in pixels. */
  unet_ms_per_cfg_step: Record<string, number>;
  unet_runs_ms: Record<string, number[]>;
  large_step: {
    size: number;
    peak_rss_bytes: number;
    rss_before_bytes: number;
    /** Peak during the step minus RSS just before it: the step's activations (attention included). */
    step_peak_above_loaded_bytes: number;
    /** False when the process peak was reached before the step (then the figure above is only an upper bound). */
    peak_during_step: boolean;
    largest_attention: AttentionSize;
  };
  image: PipelineBenchResult;
  /** LoRA sets through ModelVariants, as the service applies them (sd15-child.ts `lora`). */
  lora: LoraFigures;
  goals: {
    outside_onnxruntime: GoalResult;
    conversion_peak_rss: GoalResult;
    cached_load_seconds: GoalResult;
    lora_switch_seconds: GoalResult;
    lora_reuse_seconds: GoalResult;
  };
  /** 1-minute load average at the section's start, after each child, and at its end. */
  load_average: number[];
}

/** Options of one section run. */
export interface Sd15SectionOptions {
  modelsDir: string;
  threads: number;
  sizes: Sd15Sizes;
  /** The checkpoint to write (default: real-size SD 1.5; tests pass a small one). */
  checkpoint?: Readonly<SyntheticCheckpoint>;
}

const CHILD = path.join(import.meta.dirname, 'sd15-child.ts');
const REPO_ROOT = path.resolve(import.meta.dirname, '../../..');

/**
 * Run one measurement in a child process (stderr passed through; stdout's last line is the result).
 * @throws Error when the child fails or prints no result.
 */
function runChild(request: Sd15ChildRequest): Promise<Sd15ChildResult> {
  return new Promise((resolve, reject) => {
    // `--import tsx` resolves from the working directory: the repository root, where tsx is installed.
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(request)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !last) return reject(new Error(`sd15 ${request.task} child exited with ${code}${last ? `: ${last}` : ''}`));
      try {
        resolve(JSON.parse(last) as Sd15ChildResult);
      } catch (err) {
        reject(new Error(`sd15 ${request.task} child printed no JSON result: ${(err as Error).message}`));
      }
    });
  });
}

/**
 * Run the section.
 * @param log progress lines (stderr in the CLI).
 * @throws Error when a child fails, or when a load that must convert (or must not) did otherwise.
 */
export async function runSd15Section(options: Sd15SectionOptions, log: (line: string) => void): Promise<Sd15Report> {
  const load_average = [loadavg()[0]];
  const spec = options.checkpoint ?? SD15_BENCH_CHECKPOINT;
  log('sd15: writing the checkpoint (reused when --models-dir already holds it)');
  const files = await ensureSd15Checkpoint(options.modelsDir, spec);
  log(`sd15: checkpoint ${(files.checkpointBytes / 1e9).toFixed(2)} GB ${files.generated ? `written in ${files.generationSeconds.toFixed(0)} s` : 'reused'}`);
  // Every run converts from scratch (the hash memo included), as a first load on a new host does.
  await rm(files.cacheDir, { recursive: true, force: true });

  const base = { modelsDir: options.modelsDir, threads: options.threads };
  const child = async (request: Sd15ChildRequest): Promise<Sd15ChildResult> => {
    const result = await runChild(request);
    load_average.push(result.loadAverage);
    return result;
  };
  log('sd15: converting (child process)');
  const convert = await child({ ...base, task: 'convert' });
  if (!convert.load.converted) throw new Error('sd15: the conversion found a cache entry in an emptied cache');
  log(`sd15: converted in ${convert.load.seconds.toFixed(1)} s, peak RSS ${gb(convert.load.maxRssBytes)}`);
  log('sd15: first session open (optimizes the graphs for the CPU provider and saves them)');
  const first = await child({ ...base, task: 'first-open' });
  if (first.load.converted) throw new Error('sd15: the first open converted again');
  if (first.load.optimizationError) throw new Error(`sd15: ${first.load.optimizationError}`);
  log(`sd15: first open in ${first.load.seconds.toFixed(1)} s (optimizing ${first.load.optimizationSeconds.toFixed(1)} s)`);
  const { sizes } = options;
  const cached = await child({ ...base, task: 'cached', unetSize: sizes.unetSize, unetRepeats: sizes.unetRepeats, image: sizes.image });
  if (cached.load.converted || cached.load.optimized) throw new Error('sd15: the cached load converted or optimized again');
  const large = await child({ ...base, task: 'large-step', largeSize: sizes.largeSize });
  log(`sd15: LoRA sets (rank ${sizes.loraRank}): first, switch, reuse`);
  const loraRun = await child({ ...base, task: 'lora', unetSize: sizes.unetSize, loraRank: sizes.loraRank });
  load_average.push(loadavg()[0]);
  const lora = loraRun.lora!;

  const unet = cached.unet!;
  const step = large.large!;
  const pipeline = cached.pipeline!;
  const peakOverCheckpoint = convert.load.maxRssBytes / files.checkpointBytes;
  return {
    checkpoint: { bytes: files.checkpointBytes, dtype: spec.dtype, generated: files.generated, generation_seconds: files.generationSeconds },
    conversion: { ...convert.load, peak_rss_over_checkpoint: peakOverCheckpoint },
    first_open: first.load,
    first_load_seconds: convert.load.seconds + first.load.seconds,
    cached_load: cached.load,
    unet_ms_per_cfg_step: { [unet.size]: Math.min(...unet.ms), [step.size]: step.ms[0] },
    unet_runs_ms: { [unet.size]: unet.ms, [step.size]: step.ms },
    large_step: {
      size: step.size,
      peak_rss_bytes: step.maxRssAfterBytes,
      rss_before_bytes: step.rssBeforeBytes,
      step_peak_above_loaded_bytes: Math.max(0, step.maxRssAfterBytes - step.rssBeforeBytes),
      peak_during_step: step.maxRssAfterBytes > step.maxRssBeforeBytes,
      largest_attention: step.largestAttention,
    },
    image: pipeline,
    lora,
    goals: {
      outside_onnxruntime: { value: pipeline.overheadShare, goal: `< ${SD15_GOALS.outsideOnnxruntime * 100} %`, met: pipeline.overheadShare < SD15_GOALS.outsideOnnxruntime },
      conversion_peak_rss: {
        value: peakOverCheckpoint,
        goal: `≤ ${SD15_GOALS.conversionPeakOverCheckpoint}× the checkpoint`,
        met: peakOverCheckpoint <= SD15_GOALS.conversionPeakOverCheckpoint,
      },
      cached_load_seconds: { value: cached.load.seconds, goal: `≤ ${SD15_GOALS.cachedLoadSeconds} s`, met: cached.load.seconds <= SD15_GOALS.cachedLoadSeconds },
      lora_switch_seconds: { value: lora.switchSeconds, goal: `≤ ${SD15_GOALS.loraSwitchSeconds} s`, met: lora.switchSeconds <= SD15_GOALS.loraSwitchSeconds },
      lora_reuse_seconds: { value: lora.reuseSeconds, goal: `≤ ${SD15_GOALS.loraReuseSeconds} s`, met: lora.reuseSeconds <= SD15_GOALS.loraReuseSeconds },
    },
    load_average,
  };
}

function gb(bytes: number): string {
  return `${(bytes / 1e9).toFixed(2)} GB`;
}
