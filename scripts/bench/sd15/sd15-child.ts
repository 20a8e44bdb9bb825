/**
 * One measurement of the `sd15` benchmark section, run in a process of its own so that its peak RSS
 * (`process.resourceUsage().maxRSS`, the kernel's high-water mark of this process) belongs to that measurement
 * alone and a "fresh process" load really starts cold in onnxruntime. Started by sd15-section.ts as
 * `node --import tsx sd15-child.ts '<Sd15ChildRequest JSON>'`; prints one Sd15ChildResult JSON line on stdout.
 *
 * Tasks:
 * - `convert`: open the checkpoint, detect it, build its cache entry (convertCheckpoint: hashing + graphs +
 *   weights), nothing else: the conversion's time and peak RSS.
 * - `first-open`: loadCheckpointModel on the fresh entry: onnxruntime optimizes the graphs for the CPU provider
 *   and saves them in the entry (optimized-graphs.ts), then opens the sessions.
 * - `cached`: loadCheckpointModel again (everything cached): the cached load; then UNet CFG steps (batch 2) at
 *   the small size, and whole images through the real pipeline (pipeline-overhead.ts).
 * - `large-step`: a cached load, one tiny UNet step (so every weight page is resident), then one CFG step at the large
 *   size: its time and the process's peak RSS during it (activations, attention included, above the loaded model).
 * - `lora`: a cached load, then two rank-`loraRank` LoRAs (sd15-lora.ts) applied as the service applies them
 *   (ModelVariants): the first set (which also reads the base weights into memory once), a switch to the second
 *   set, a request with the first set again (cached: the reuse cost), and a UNet CFG step on the base model and
 *   on a variant at the small size.
 */
import { loadavg } from 'node:os';
import { ContentHashes } from '../../../gpu-service/src/checkpoints/content-hash';
import { ConversionCache } from '../../../gpu-service/src/checkpoints/conversion-cache';
import { convertCheckpoint, loadCheckpointModel, openCheckpoint, type CheckpointEngineOptions, type CheckpointRef } from '../../../gpu-service/src/checkpoints/checkpoint-engine';
import { describeModel, type ModelSpec } from '../../../gpu-service/src/checkpoints/model-spec';
import type { DiffusionModel } from '../../../gpu-service/src/models/diffusion-model';
import type { SessionOptions } from '../../../gpu-service/src/onnx/session';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ModelVariants } from '../../../gpu-service/src/addons/model-variants';
import type { ResolvedAddons } from '../../../gpu-service/src/addons/job-addons';
import { benchPipeline, type PipelineBenchResult } from '../pipeline-overhead';
import { BENCH_MODEL_IDS, sd15BenchPaths, type CheckpointBenchSection } from './sd15-checkpoint';
import { writeBenchLora, type BenchLoraFile } from './sd15-lora';

/** What the parent asks for. */
export interface Sd15ChildRequest {
  task: 'convert' | 'first-open' | 'cached' | 'large-step' | 'lora';
  modelsDir: string;
  /** Whose checkpoint (default sd15; the sdxl section uses the same tasks). */
  section?: CheckpointBenchSection;
  /** onnxruntime intra-op threads (0 = its default). */
  threads: number;
  /** `cached`: UNet size (pixels, square), untimed + timed CFG steps, and the pipeline run. */
  unetSize?: number;
  unetRepeats?: number;
  image?: { size: number; steps: number; repeats: number };
  /** `large-step`: the large size (pixels, square). */
  largeSize?: number;
  /** `lora`: the LoRAs' rank (default 32). */
  loraRank?: number;
  /**
   * `lora`: how sets are applied, each measured in turn in this process (default ['branches'], the service's way;
   * 'patched' builds patched sessions, the way before the branches: several GB per set at SD 1.5 size).
   */
  loraMethods?: Array<'branches' | 'patched'>;
}

/** `lora`: what applying LoRA sets cost (ModelVariants.acquire), seconds, and UNet steps with and without. */
export interface LoraFigures {
  method: 'branches' | 'patched';
  file: Omit<BenchLoraFile, 'path'>;
  /**
   * The first set. branches: the rewritten graphs optimized and saved in the entry (once per host) and opened;
   * patched: base weights read into memory once, deltas, patched sessions.
   */
  firstSetSeconds: number;
  firstSetCpuSeconds: number;
  /** branches: the first set again in a fresh ModelVariants (the saved branched graphs opened: once per process). */
  firstSetReopenSeconds?: number;
  /** Switching to another set of the same shape (base weights already in memory). */
  switchSeconds: number;
  switchCpuSeconds: number;
  /** A request with a set already built (the first one again). */
  reuseSeconds: number;
  /** UNet CFG step (batch 2) at the small size: base model and the first variant, interleaved, fastest of 3 after an untimed one. */
  unetMsBase: number;
  unetMsVariant: number;
  size: number;
  /** Peak RSS of the process after everything (two variants and the base weights held), bytes. */
  maxRssBytes: number;
}

/** Process-level figures every task reports. */
export interface ProcessFigures {
  /** Peak RSS of this process so far, bytes. */
  maxRssBytes: number;
  /** RSS now, bytes. */
  rssBytes: number;
}

/** A timed load (loadCheckpointModel or convertCheckpoint) in this process. */
export interface LoadFigures extends ProcessFigures {
  /** Wall seconds of the call. */
  seconds: number;
  /** CPU seconds (user + system, every thread of this process) during the call. */
  cpuSeconds: number;
  converted: boolean;
  conversionSeconds: number;
  optimized: boolean;
  optimizationSeconds: number;
  optimizationError?: string;
  sessionSeconds: number;
  /** Bytes of the cache entry's graphs and weights (convert only). */
  entryBytes?: number;
}

/** One UNet CFG step size. */
export interface UnetStepFigures {
  size: number;
  batch: number;
  /** Wall ms of each timed OnnxModel.run, in order. */
  ms: number[];
}

/**
 * The UNet's largest self-attention at a size: the level with the most heads × tokens², and the bytes its
 * float32 score matrix [batch, heads, tokens, tokens] would take if an implementation held it whole.
 */
export interface AttentionSize {
  level: number;
  heads: number;
  tokens: number;
  fullScoresBytes: number;
}

/** The largest self-attention of `spec`'s UNet for a batch of `batch` square images of `size` pixels. */
function largestAttention(spec: ModelSpec, size: number, batch: number): AttentionSize {
  let best: AttentionSize = { level: -1, heads: 0, tokens: 0, fullScoresBytes: 0 };
  spec.unet.config.levels.forEach((level, i) => {
    const side = Math.ceil(size / 8 / 2 ** i);
    const tokens = side * side;
    const bytes = batch * level.heads * tokens * tokens * 4;
    if (bytes > best.fullScoresBytes) best = { level: i, heads: level.heads, tokens, fullScoresBytes: bytes };
  });
  return best;
}

export interface Sd15ChildResult {
  task: Sd15ChildRequest['task'];
  load: LoadFigures;
  unet?: UnetStepFigures;
  pipeline?: PipelineBenchResult;
  /** `large-step`: RSS just before the large step, the process peak after it, and the step's wall ms. */
  large?: UnetStepFigures & { rssBeforeBytes: number; maxRssBeforeBytes: number; maxRssAfterBytes: number; largestAttention: AttentionSize };
  lora?: LoraFigures;
  /** `lora`: the other methods of `loraMethods`, in order. */
  loraMore?: LoraFigures[];
  /** 1-minute load average when the task ended. */
  loadAverage: number;
}

function processFigures(): ProcessFigures {
  return { maxRssBytes: process.resourceUsage().maxRSS * 1024, rssBytes: process.memoryUsage().rss };
}

function cpuSeconds(): number {
  const u = process.resourceUsage();
  return (u.userCPUTime + u.systemCPUTime) / 1e6;
}

/** The engine as the service sets it up on the CPU provider: float32 graphs, onnxruntime's fused attention. */
function engineFor(modelsDir: string, section: CheckpointBenchSection = 'sd15'): { engine: CheckpointEngineOptions; ref: CheckpointRef } {
  const paths = sd15BenchPaths(modelsDir, section);
  const cache = new ConversionCache(paths.cacheDir);
  return {
    engine: { cache, hashes: new ContentHashes(cache.root), tokenizerDir: paths.tokenizerDir, floatType: 'float32', attention: 'contrib' },
    ref: { id: BENCH_MODEL_IDS[section], path: paths.checkpoint, format: 'safetensors' },
  };
}

async function convertOnly(modelsDir: string, section?: CheckpointBenchSection): Promise<LoadFigures> {
  const { engine, ref } = engineFor(modelsDir, section);
  const cpu = cpuSeconds();
  const started = performance.now();
  const parts = await openCheckpoint(ref);
  try {
    const entry = await convertCheckpoint(ref, parts, await describeModel(parts), engine);
    return {
      seconds: (performance.now() - started) / 1000,
      cpuSeconds: cpuSeconds() - cpu,
      converted: entry.built,
      conversionSeconds: entry.seconds,
      optimized: false,
      optimizationSeconds: 0,
      sessionSeconds: 0,
      entryBytes: entry.bytes,
      ...processFigures(),
    };
  } finally {
    await parts.close();
  }
}

async function load(modelsDir: string, sessionOptions: SessionOptions, section?: CheckpointBenchSection): Promise<{ model: DiffusionModel; spec: ModelSpec; figures: LoadFigures }> {
  const { engine, ref } = engineFor(modelsDir, section);
  const cpu = cpuSeconds();
  const started = performance.now();
  const loaded = await loadCheckpointModel(ref, engine, sessionOptions);
  const figures: LoadFigures = {
    seconds: (performance.now() - started) / 1000,
    cpuSeconds: cpuSeconds() - cpu,
    converted: loaded.converted,
    conversionSeconds: loaded.conversionSeconds,
    optimized: loaded.optimized,
    optimizationSeconds: loaded.optimizationSeconds,
    optimizationError: loaded.optimizationError,
    sessionSeconds: loaded.sessionSeconds,
    ...processFigures(),
  };
  if (!('unet' in loaded.spec)) throw new Error('the SD 1.5 bench loads a UNet checkpoint, got a flow transformer');
  return { model: loaded.model, spec: loaded.spec, figures };
}

/**
 * One classifier-free-guidance UNet run as the pipeline makes it: batch 2 (unconditional + conditional halves),
 * latents of `size`/8, timestep 500, text states of the text encoder's width and the tokenizer's length; SDXL
 * UNets also get pooled text_embeds and time ids (size, crop 0, size).
 * @returns wall milliseconds of the OnnxModel.run call.
 */
async function unetStep(model: DiffusionModel, size: number): Promise<number> {
  const h = size / 8;
  const batch = 2;
  const sequence = 77;
  const sample = new Float32Array(batch * model.unetInChannels * h * h);
  for (let i = 0; i < sample.length; i++) sample[i] = Math.sin(i * 0.37);
  const context = new Float32Array(batch * sequence * model.hiddenSize);
  for (let i = 0; i < context.length; i++) context[i] = Math.cos(i * 0.11) * 0.5;
  const feeds: Parameters<DiffusionModel['unet']['run']>[0] = {
    sample: { data: sample, dims: [batch, model.unetInChannels, h, h] },
    timestep: { data: new Float32Array(batch).fill(500), dims: [batch] },
    encoder_hidden_states: { data: context, dims: [batch, sequence, model.hiddenSize] },
  };
  if (model.sdxl) {
    const P = model.sdxl.pooledDim;
    feeds.text_embeds = { data: Float32Array.from({ length: batch * P }, (_, i) => Math.sin(i * 0.05) * 0.5), dims: [batch, P] };
    const ids = model.sdxl.timeIdCount === 6 ? [size, size, 0, 0, size, size] : [size, size, 0, 0, 6];
    feeds.time_ids = { data: Float32Array.from({ length: batch * ids.length }, (_, i) => ids[i % ids.length]), dims: [batch, ids.length] };
  }
  const started = performance.now();
  await model.unet.run(feeds);
  return performance.now() - started;
}

/** The `lora` task (see the module comment). */
async function loraCosts(request: Sd15ChildRequest, model: DiffusionModel, sessionOptions: SessionOptions, log: (line: string) => void, methodIndex = 0): Promise<LoraFigures> {
  const paths = sd15BenchPaths(request.modelsDir);
  const rank = request.loraRank ?? 32;
  const folder = path.join(paths.root, 'loras');
  await mkdir(folder, { recursive: true });
  const files = [await writeBenchLora(paths.checkpoint, path.join(folder, 'bench-a.safetensors'), rank, 1), await writeBenchLora(paths.checkpoint, path.join(folder, 'bench-b.safetensors'), rank, 2)];
  log(`rank-${rank} LoRAs over ${files[0].modules} modules (${(files[0].bytes / 1e6).toFixed(1)} MB each)`);
  const { engine } = engineFor(request.modelsDir);
  const method = request.loraMethods?.[methodIndex] ?? 'branches';
  log(`applying sets as ${method}`);
  const variants = new ModelVariants({ engine, sessionOptions, loraBranches: method === 'branches' });
  const set = (i: number): ResolvedAddons => ({ loras: [{ id: `bench-${i}`, path: files[i].path, param: 'loras[0].name', strength: 0.8 }], embeddings: [] });
  const timed = async (i: number) => {
    const cpu = cpuSeconds();
    const started = performance.now();
    const lease = await variants.acquire(model, set(i));
    return { lease, seconds: (performance.now() - started) / 1000, cpuSeconds: cpuSeconds() - cpu };
  };
  const size = request.unetSize ?? 256;
  try {
    const first = await timed(0);
    log(`first set in ${first.seconds.toFixed(2)} s`);
    // Base and variant steps interleaved (one untimed each, then fastest of 3 each), so load changes on a shared
    // machine hit both alike.
    await unetStep(model, size);
    await unetStep(first.lease.model, size);
    let unetMsBase = Infinity;
    let unetMsVariant = Infinity;
    for (let i = 0; i < 3; i++) {
      unetMsBase = Math.min(unetMsBase, await unetStep(model, size));
      unetMsVariant = Math.min(unetMsVariant, await unetStep(first.lease.model, size));
    }
    first.lease.release();
    const second = await timed(1);
    second.lease.release();
    log(`switch in ${second.seconds.toFixed(2)} s`);
    const again = await timed(0);
    again.lease.release();
    let firstSetReopenSeconds: number | undefined;
    if (method === 'branches') {
      const fresh = new ModelVariants({ engine, sessionOptions });
      const started = performance.now();
      (await fresh.acquire(model, set(0))).release();
      firstSetReopenSeconds = (performance.now() - started) / 1000;
      await fresh.close();
    }
    const { path: _path, ...file } = files[0];
    return {
      method,
      ...(firstSetReopenSeconds !== undefined ? { firstSetReopenSeconds } : {}),
      file,
      firstSetSeconds: first.seconds,
      firstSetCpuSeconds: first.cpuSeconds,
      switchSeconds: second.seconds,
      switchCpuSeconds: second.cpuSeconds,
      reuseSeconds: again.seconds,
      unetMsBase,
      unetMsVariant,
      size,
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
    };
  } finally {
    await variants.close();
  }
}

async function run(request: Sd15ChildRequest): Promise<Sd15ChildResult> {
  const sessionOptions: SessionOptions = { executionProviders: ['cpu'], intraOpNumThreads: request.threads };
  const log = (line: string) => process.stderr.write(`bench: ${request.section ?? 'sd15'} ${request.task}: ${line}\n`);
  if (request.task === 'convert') return { task: request.task, load: await convertOnly(request.modelsDir, request.section), loadAverage: loadavg()[0] };

  const { model, spec, figures } = await load(request.modelsDir, sessionOptions, request.section);
  try {
    if (request.task === 'first-open') return { task: request.task, load: figures, loadAverage: loadavg()[0] };
    if (request.task === 'cached') {
      const size = request.unetSize ?? 256;
      log(`loaded in ${figures.seconds.toFixed(1)} s; UNet CFG steps at ${size}x${size}`);
      await unetStep(model, size); // untimed: onnxruntime plans and allocates its buffers for this shape once
      const ms: number[] = [];
      for (let i = 0; i < (request.unetRepeats ?? 3); i++) ms.push(await unetStep(model, size));
      const image = request.image ?? { size: 256, steps: 4, repeats: 1 };
      log(`one image at ${image.size}x${image.size}, ${image.steps} steps × ${image.repeats} (after an untimed 3-step one)`);
      const pipeline = await benchPipeline(model, { width: image.size, height: image.size, steps: image.steps, repeats: image.repeats });
      return { task: request.task, load: figures, unet: { size, batch: 2, ms }, pipeline, loadAverage: loadavg()[0] };
    }
    if (request.task === 'lora') {
      const lora = await loraCosts(request, model, sessionOptions, log);
      const more: LoraFigures[] = [];
      for (let i = 1; i < (request.loraMethods?.length ?? 1); i++) more.push(await loraCosts(request, model, sessionOptions, log, i));
      return { task: request.task, load: figures, lora, ...(more.length ? { loraMore: more } : {}), loadAverage: loadavg()[0] };
    }
    const size = request.largeSize ?? 512;
    await unetStep(model, 64); // every weight page resident, so the peak below is the step's own memory
    const rssBeforeBytes = process.memoryUsage().rss;
    const maxRssBeforeBytes = process.resourceUsage().maxRSS * 1024;
    log(`one UNet CFG step at ${size}x${size}`);
    const ms = await unetStep(model, size);
    return {
      task: request.task,
      load: figures,
      large: { size, batch: 2, ms: [ms], rssBeforeBytes, maxRssBeforeBytes, maxRssAfterBytes: process.resourceUsage().maxRSS * 1024, largestAttention: largestAttention(spec, size, 2) },
      loadAverage: loadavg()[0],
    };
  } finally {
    await model.release();
  }
}

run(JSON.parse(process.argv[2] ?? '{}') as Sd15ChildRequest).then(
  (result) => process.stdout.write(`${JSON.stringify(result)}\n`),
  (error: unknown) => {
    process.stderr.write(`bench: sd15 child: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
