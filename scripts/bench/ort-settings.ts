/**
 * The `ort` section of `npm run bench` (issue 18): onnxruntime session settings measured on the bench-512 UNet
 * (real conv + attention cost) at 256² with CFG (batch 2), so the service's defaults are chosen by measurement.
 *
 * Every variant changes one setting from onnxruntime's defaults (gpu-service/src/onnx/session.ts
 * SessionOptions). All sessions are open at once and timed in interleaved rounds (the machine's other load
 * hits every variant alike); each variant reports its best round's median ms per UNet run, and its ratio to
 * the default in the same run.
 */
import path from 'node:path';
import { OnnxModel, type SessionOptions } from '../../gpu-service/src/onnx/session';
import { BENCH_CONTEXT_DIM } from './bench-unet-graph';

/** One measured setting. */
export interface OrtVariant {
  name: string;
  /** What the variant sets on top of onnxruntime's defaults. */
  options: SessionOptions;
}

/** The variants, the first being onnxruntime's defaults (the reference of every ratio). */
export const ORT_VARIANTS: readonly OrtVariant[] = [
  { name: 'onnxruntime defaults', options: {} },
  { name: 'intra-op threads 1', options: { intraOpNumThreads: 1 } },
  { name: 'intra-op threads 2', options: { intraOpNumThreads: 2 } },
  { name: 'parallel execution, inter-op threads 2', options: { executionMode: 'parallel', interOpNumThreads: 2 } },
  { name: 'no spinning', options: { allowSpinning: false } },
  { name: 'no CPU memory arena', options: { enableCpuMemArena: false } },
  { name: 'no memory pattern', options: { enableMemPattern: false } },
  { name: 'graph optimization basic', options: { graphOptimizationLevel: 'basic' } },
  { name: 'graph optimization extended', options: { graphOptimizationLevel: 'extended' } },
];

/** One variant's result. */
export interface OrtVariantResult {
  name: string;
  options: SessionOptions;
  /** Best round's median wall time of one UNet run, ms. */
  msPerRun: number;
  /** msPerRun / the defaults' msPerRun (below 1 = faster). */
  overDefault: number;
}

/** How much the section measures. */
export interface OrtSizes {
  /** Latent size of the image (pixels / 8). */
  latent: number;
  /** Timed runs per variant per round, and rounds. */
  runs: number;
  rounds: number;
}

/**
 * Measure every ORT_VARIANTS entry on `<benchModelDir>/unet/model.onnx`.
 * @param threads the run's --threads (applied to variants that do not set intra-op threads themselves).
 * @throws Error when the graph cannot be opened or run.
 */
export async function benchOrtSettings(benchModelDir: string, sizes: OrtSizes, threads: number, log: (line: string) => void): Promise<OrtVariantResult[]> {
  const file = path.join(benchModelDir, 'unet', 'model.onnx');
  const feeds = {
    sample: { data: new Float32Array(2 * 4 * sizes.latent * sizes.latent).map((_, i) => Math.sin(i)), dims: [2, 4, sizes.latent, sizes.latent] },
    timestep: { data: [500], dims: [1] },
    encoder_hidden_states: { data: new Float32Array(2 * 77 * BENCH_CONTEXT_DIM).map((_, i) => Math.cos(i) * 0.1), dims: [2, 77, BENCH_CONTEXT_DIM] },
  };
  const sessions: OnnxModel[] = [];
  try {
    for (const v of ORT_VARIANTS) {
      const options: SessionOptions = { executionProviders: ['cpu'], ...(threads ? { intraOpNumThreads: threads } : {}), ...v.options };
      const model = await OnnxModel.open(file, options);
      // Untimed: kernel set-up, arena growth, memory-pattern planning.
      for (let i = 0; i < 2; i++) await model.run(feeds);
      sessions.push(model);
    }
    const best = ORT_VARIANTS.map(() => Infinity);
    for (let round = 0; round < sizes.rounds; round++) {
      // Alternate the order so no variant always runs right after the same neighbour.
      const order = ORT_VARIANTS.map((_, i) => i);
      if (round % 2 === 1) order.reverse();
      for (const i of order) {
        const times: number[] = [];
        for (let r = 0; r < sizes.runs; r++) {
          const start = performance.now();
          await sessions[i].run(feeds);
          times.push(performance.now() - start);
        }
        times.sort((a, b) => a - b);
        const median = times[Math.floor(times.length / 2)];
        best[i] = Math.min(best[i], median);
        log(`ort round ${round + 1}/${sizes.rounds}: ${ORT_VARIANTS[i].name}: ${median.toFixed(1)} ms per UNet run`);
      }
    }
    return ORT_VARIANTS.map((v, i) => ({ name: v.name, options: v.options, msPerRun: best[i], overDefault: best[i] / best[0] }));
  } finally {
    for (const s of sessions) await s.release();
  }
}
