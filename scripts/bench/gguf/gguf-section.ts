/**
 * The `gguf` section of `npm run bench` (issue 15): GGUF Linear weights dequantized to float32 at conversion
 * against kept quantized (MatMulNBits, GGUF_KEEP_QUANTIZED), on the flux section's reduced-depth FLUX.1
 * transformer (flux-shape.ts; width from --flux-width) written as city96-layout GGUF files, Q8_0 and Q4_0, with
 * deterministic random blocks. For each file and mode, in one run: the conversion's seconds and peak RSS, the
 * graph's bytes, the session's RSS after open and peak during steps, and ms per transformer step (fastest of the
 * timed calls) on the CPU execution provider. Each measurement is a child process (flux-child.ts) so its peak RSS
 * is its own.
 */
import { spawn } from 'node:child_process';
import { rm, stat } from 'node:fs/promises';
import { loadavg } from 'node:os';
import path from 'node:path';
import { fluxTensorShapes } from '../../../gpu-service/src/checkpoints/detect/flux-config';
import { toFloat16Bits } from '../../../gpu-service/src/onnx/float16';
import { writeGguf, type GgufTensorToWrite } from '../../../gpu-service/src/weights/gguf-writer';
import { createMulberry32 } from '../../tiny-model/prng';
import type { FluxChildRequest, FluxChildResult } from '../flux/flux-child';
import { fluxBenchConfig, type FluxBenchShape } from '../flux/flux-shape';

/** The quantizations measured. */
export const GGUF_BENCH_TYPES = ['Q8_0', 'Q4_0'] as const;
export type GgufBenchType = (typeof GGUF_BENCH_TYPES)[number];

/** One (file, mode) row. */
export interface GgufBenchRow {
  type: GgufBenchType;
  mode: 'dequantized' | 'kept quantized';
  file_bytes: number;
  conversion_seconds: number;
  conversion_peak_rss_bytes: number;
  graph_bytes: number;
  open_seconds: number;
  rss_loaded_bytes: number;
  step_peak_rss_bytes: number;
  ms_fastest: number;
  runs_ms: number[];
}

export interface GgufReport {
  shape: FluxBenchShape;
  parameters: number;
  rows: GgufBenchRow[];
  /** 1-minute load average at the start and after each child. */
  load_average: number[];
}

export interface GgufSectionOptions {
  modelsDir: string;
  threads: number;
  shape: FluxBenchShape;
  repeats: number;
}

const CHILD = path.join(import.meta.dirname, '../flux/flux-child.ts');
const REPO_ROOT = path.resolve(import.meta.dirname, '../../..');

function runChild(request: FluxChildRequest): Promise<FluxChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(request)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !last) return reject(new Error(`gguf ${request.task} child exited with ${code}${last ? `: ${last}` : ''}`));
      try {
        resolve(JSON.parse(last) as FluxChildResult);
      } catch (err) {
        reject(new Error(`gguf ${request.task} child printed no JSON result: ${(err as Error).message}`));
      }
    });
  });
}

/** city96 `tools/convert.py`'s choice: 1-D and the small input / output projections stay float. */
function storedType(key: string, dims: readonly number[], quant: GgufBenchType): 'F32' | 'F16' | GgufBenchType {
  if (dims.length === 1 || /^(img_in|time_in\.in_layer|vector_in\.in_layer|final_layer\.linear)\./.test(key)) return 'F32';
  if (/^(txt_in|time_in\.out_layer|vector_in\.out_layer|final_layer\.adaLN_modulation)\./.test(key)) return 'F16';
  return quant;
}

/**
 * Deterministic random blocks for [out, in]: per-block half scale d, all quant values uniform, so the weights have
 * about the ±1/√in range of the flux section's: Q8_0 d = 1/(127√in), Q4_0 d = 1/(8√in), each times U(0.5, 1.5).
 */
function randomBlocks(quant: GgufBenchType, dims: readonly number[], next: () => number): Uint8Array {
  const size = quant === 'Q4_0' ? 18 : 34;
  const blocks = (dims[0] * dims[1]) / 32;
  const base = 1 / ((quant === 'Q4_0' ? 8 : 127) * Math.sqrt(dims[1]));
  const out = new Uint8Array(blocks * size);
  for (let at = 0; at < out.length; at += size) {
    const h = toFloat16Bits(base * (0.5 + next()));
    out[at] = h & 0xff;
    out[at + 1] = h >> 8;
    for (let j = 2; j < size; j++) out[at + j] = (next() * 256) | 0;
  }
  return out;
}

/** The synthetic transformer as GGUF tensors (BFL keys, city96 types). */
export function ggufBenchTensors(shape: FluxBenchShape, quant: GgufBenchType, seed = 15): GgufTensorToWrite[] {
  return [...fluxTensorShapes(fluxBenchConfig(shape))].map(([key, dims], index) => {
    const type = storedType(key, dims, quant);
    return {
      name: key,
      type,
      shape: dims,
      data: () => {
        const next = createMulberry32((seed * 1_000_003 + index * 7919) >>> 0);
        if (type === quant) return randomBlocks(quant, dims, next);
        const n = dims.reduce((a, b) => a * b, 1);
        const scale = key.endsWith('.scale');
        const bound = key.endsWith('.bias') ? 0.02 : scale ? 0.1 : 1 / Math.sqrt(dims[1] ?? dims[0]);
        return Float32Array.from({ length: n }, () => (scale ? 1 : 0) + (next() * 2 - 1) * bound);
      },
    };
  });
}

/** Run the section. @throws Error when a child fails. */
export async function runGgufSection(options: GgufSectionOptions, log: (line: string) => void): Promise<GgufReport> {
  const load_average = [loadavg()[0]];
  const { shape } = options;
  const rows: GgufBenchRow[] = [];
  let parameters = 0;
  for (const quant of GGUF_BENCH_TYPES) {
    const name = `gguf-bench-${shape.hiddenSize}-${shape.depth}x${shape.depthSingleBlocks}-${quant}`;
    const checkpoint = path.join(options.modelsDir, `${name}.gguf`);
    const tensors = ggufBenchTensors(shape, quant);
    parameters = tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    try {
      await stat(checkpoint);
    } catch {
      log(`gguf: writing ${name}.gguf (${(parameters / 1e9).toFixed(2)} B parameters)`);
      await writeGguf(checkpoint, tensors, { metadata: [{ key: 'general.architecture', type: 'string', value: 'flux' }] });
    }
    const fileBytes = (await stat(checkpoint)).size;
    for (const keepQuantized of [false, true]) {
      const graphDir = path.join(options.modelsDir, `${name}-${keepQuantized ? 'kept' : 'dequantized'}-onnx`);
      await rm(graphDir, { recursive: true, force: true });
      const base = { checkpoint, graphDir, shape, threads: options.threads, repeats: options.repeats, keepQuantized };
      const mode = keepQuantized ? 'kept quantized' : 'dequantized';
      log(`gguf: ${quant} ${mode}: converting (child process)`);
      const convert = await runChild({ ...base, task: 'convert' });
      load_average.push(convert.loadAverage);
      log(`gguf: ${quant} ${mode}: ${options.repeats} timed steps at ${shape.size}² (child process)`);
      const step = await runChild({ ...base, task: 'step' });
      load_average.push(step.loadAverage);
      await rm(graphDir, { recursive: true, force: true });
      rows.push({
        type: quant,
        mode,
        file_bytes: fileBytes,
        conversion_seconds: convert.seconds,
        conversion_peak_rss_bytes: convert.maxRssBytes,
        graph_bytes: convert.graphBytes ?? 0,
        open_seconds: step.seconds,
        rss_loaded_bytes: step.rssBeforeBytes ?? 0,
        step_peak_rss_bytes: step.maxRssBytes,
        ms_fastest: Math.min(...step.ms!),
        runs_ms: step.ms!,
      });
      log(`gguf: ${quant} ${mode}: ${Math.min(...step.ms!).toFixed(0)} ms/step, step peak RSS ${(step.maxRssBytes / 2 ** 30).toFixed(2)} GiB`);
    }
  }
  return { shape, parameters, rows, load_average };
}
