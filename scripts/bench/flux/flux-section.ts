/**
 * The `flux` section of `npm run bench` (issue 16): a reduced-depth, real-width FLUX.1 transformer
 * (flux-shape.ts) on the CPU execution provider, every figure from one run:
 * - the synthetic BF16 transformer file (deterministic random weights, written once per --models-dir);
 * - its conversion to a float32 ONNX graph with external weights: seconds and peak RSS against the file's size;
 * - ms per transformer step (batch 1, FLUX.1-schnell has no CFG) at the shape's size and text length, fastest
 *   of the timed calls, and the peak RSS of the process that ran them.
 * Each measurement runs in a child process (flux-child.ts) so its peak RSS is its own.
 */
import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { loadavg } from 'node:os';
import path from 'node:path';
import { rm } from 'node:fs/promises';
import { fluxTensorShapes } from '../../../gpu-service/src/checkpoints/detect/flux-config';
import { writeSafetensors, type TensorToWrite } from '../../../gpu-service/src/weights/safetensors-writer';
import { createMulberry32 } from '../../tiny-model/prng';
import type { FluxChildRequest, FluxChildResult } from './flux-child';
import { fluxBenchConfig, type FluxBenchShape } from './flux-shape';

/** The section's report (snake_case, as the rest of the bench JSON). */
export interface FluxReport {
  shape: FluxBenchShape;
  parameters: number;
  checkpoint: { bytes: number; dtype: 'BF16'; generated: boolean; generation_seconds: number };
  conversion: { seconds: number; peak_rss_bytes: number; peak_rss_over_checkpoint: number; graph_bytes: number };
  step: { size: number; text_tokens: number; ms_fastest: number; runs_ms: number[]; open_seconds: number; rss_loaded_bytes: number; peak_rss_bytes: number };
  /** 1-minute load average at the start, after each child. */
  load_average: number[];
}

/** Options of one section run. */
export interface FluxSectionOptions {
  modelsDir: string;
  threads: number;
  shape: FluxBenchShape;
  /** Timed transformer calls (after one untimed). */
  repeats: number;
}

const CHILD = path.join(import.meta.dirname, 'flux-child.ts');
const REPO_ROOT = path.resolve(import.meta.dirname, '../../..');

function runChild(request: FluxChildRequest): Promise<FluxChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(request)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !last) return reject(new Error(`flux ${request.task} child exited with ${code}${last ? `: ${last}` : ''}`));
      try {
        resolve(JSON.parse(last) as FluxChildResult);
      } catch (err) {
        reject(new Error(`flux ${request.task} child printed no JSON result: ${(err as Error).message}`));
      }
    });
  });
}

/** The synthetic transformer's tensors (BFL keys): weights U(±1/√fan_in), biases U(±0.02), norm scales 1 ± 0.1. */
export function fluxBenchTensors(shape: FluxBenchShape, seed = 16): TensorToWrite[] {
  return [...fluxTensorShapes(fluxBenchConfig(shape))].map(([key, dims], index) => ({
    key,
    dtype: 'BF16' as const,
    shape: dims,
    values: () => {
      const next = createMulberry32((seed * 1_000_003 + index * 7919) >>> 0);
      const n = dims.reduce((a, b) => a * b, 1);
      const out = new Float32Array(n);
      const scale = key.endsWith('.scale');
      const bound = key.endsWith('.bias') ? 0.02 : scale ? 0.1 : 1 / Math.sqrt(dims[1] ?? dims[0]);
      for (let i = 0; i < n; i++) out[i] = (scale ? 1 : 0) + (next() * 2 - 1) * bound;
      return out;
    },
  }));
}

/**
 * Run the section.
 * @throws Error when a child fails.
 */
export async function runFluxSection(options: FluxSectionOptions, log: (line: string) => void): Promise<FluxReport> {
  const load_average = [loadavg()[0]];
  const { shape } = options;
  const name = `flux-bench-${shape.hiddenSize}-${shape.depth}x${shape.depthSingleBlocks}`;
  const checkpoint = path.join(options.modelsDir, `${name}.safetensors`);
  const graphDir = path.join(options.modelsDir, `${name}-onnx`);
  const tensors = fluxBenchTensors(shape);
  const parameters = tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  let generated = false;
  let generationSeconds = 0;
  try {
    await stat(checkpoint);
  } catch {
    log(`flux: writing ${name}.safetensors (${(parameters / 1e9).toFixed(2)} B parameters, BF16)`);
    const t = performance.now();
    await writeSafetensors(checkpoint, tensors, { format: 'pt', generator: 'image-api bench (random weights)' });
    generationSeconds = (performance.now() - t) / 1000;
    generated = true;
  }
  const bytes = (await stat(checkpoint)).size;
  await rm(graphDir, { recursive: true, force: true });
  const base = { checkpoint, graphDir, shape, threads: options.threads, repeats: options.repeats };
  log('flux: converting the transformer (child process)');
  const convert = await runChild({ ...base, task: 'convert' });
  load_average.push(convert.loadAverage);
  log(`flux: converted in ${convert.seconds.toFixed(1)} s, peak RSS ${(convert.maxRssBytes / 1e9).toFixed(2)} GB`);
  log(`flux: ${options.repeats} timed steps at ${shape.size}² (child process)`);
  const step = await runChild({ ...base, task: 'step' });
  load_average.push(step.loadAverage);
  await rm(graphDir, { recursive: true, force: true });
  return {
    shape,
    parameters,
    checkpoint: { bytes, dtype: 'BF16', generated, generation_seconds: generationSeconds },
    conversion: { seconds: convert.seconds, peak_rss_bytes: convert.maxRssBytes, peak_rss_over_checkpoint: convert.maxRssBytes / bytes, graph_bytes: convert.graphBytes ?? 0 },
    step: {
      size: shape.size,
      text_tokens: shape.textTokens,
      ms_fastest: Math.min(...step.ms!),
      runs_ms: step.ms!,
      open_seconds: step.seconds,
      rss_loaded_bytes: step.rssBeforeBytes ?? 0,
      peak_rss_bytes: step.maxRssBytes,
    },
    load_average,
  };
}
