/**
 * One measurement of the `flux` bench section in a process of its own (its peak RSS is that measurement's alone),
 * started by flux-section.ts as `node --import tsx flux-child.ts '<FluxChildRequest JSON>'`; prints one JSON line.
 * - `convert`: detect the synthetic transformer file (BF16 safetensors, or GGUF for the gguf section) and build its
 *   float32 ONNX graph with external weights (buildFluxTransformerGraph + save: what the engine's conversion does
 *   for the transformer), GGUF Q4_0 / Q8_0 Linear weights kept quantized when `keepQuantized`.
 * - `step`: open the graph on the CPU provider (optimized at load) and run the transformer at the shape's size:
 *   one untimed call, then `repeats` timed ones (batch 1, no CFG: FLUX.1-schnell's step).
 */
import { loadavg } from 'node:os';
import { detectFluxConfig } from '../../../gpu-service/src/checkpoints/detect/flux-config';
import { buildFluxTransformerGraph } from '../../../gpu-service/src/graphs/flux-transformer';
import { fluxImageIds } from '../../../gpu-service/src/diffusion/pipelines/flow-generate';
import { OnnxModel } from '../../../gpu-service/src/onnx/session';
import { openGguf } from '../../../gpu-service/src/weights/gguf';
import { openSafetensors } from '../../../gpu-service/src/weights/safetensors';
import { WeightSet } from '../../../gpu-service/src/weights/weight-set';
import type { FluxBenchShape } from './flux-shape';

/** What the parent asks for. */
export interface FluxChildRequest {
  task: 'convert' | 'step';
  checkpoint: string;
  graphDir: string;
  shape: FluxBenchShape;
  threads: number;
  repeats: number;
  /** convert: for a .gguf checkpoint, keep Q4_0 / Q8_0 Linear weights quantized (MatMulNBits) or dequantize. */
  keepQuantized?: boolean;
}

/** What a child reports. */
export interface FluxChildResult {
  seconds: number;
  maxRssBytes: number;
  /** step: RSS after the open, before the first call; ms of each timed call. */
  rssBeforeBytes?: number;
  ms?: number[];
  graphBytes?: number;
  loadAverage: number;
}

const maxRss = () => process.resourceUsage().maxRSS * 1024;

async function main(request: FluxChildRequest): Promise<FluxChildResult> {
  const started = performance.now();
  if (request.task === 'convert') {
    const file = request.checkpoint.endsWith('.gguf') ? await openGguf(request.checkpoint) : await openSafetensors(request.checkpoint);
    try {
      const weights = WeightSet.fromFile(file, '', request.checkpoint);
      const saved = await buildFluxTransformerGraph(detectFluxConfig(weights), weights, { floatType: 'float32', keepQuantized: request.keepQuantized ?? false }).save(request.graphDir);
      return { seconds: (performance.now() - started) / 1000, maxRssBytes: maxRss(), graphBytes: saved.bytes, loadAverage: loadavg()[0] };
    } finally {
      await file.close();
    }
  }
  const model = await OnnxModel.open(`${request.graphDir}/model.onnx`, { executionProviders: ['cpu'], intraOpNumThreads: request.threads });
  const openSeconds = (performance.now() - started) / 1000;
  const rssBeforeBytes = process.memoryUsage().rss;
  const h = request.shape.size / 8;
  const tokens = (h / 2) * (h / 2);
  const L = request.shape.textTokens;
  const fill = (n: number, v: number) => new Float32Array(n).fill(v);
  const feeds = {
    hidden_states: { data: fill(tokens * 64, 0.1), dims: [1, tokens, 64] },
    encoder_hidden_states: { data: fill(L * 4096, 0.05), dims: [1, L, 4096] },
    pooled_projections: { data: fill(768, 0.1), dims: [1, 768] },
    timestep: { data: fill(1, 0.5), dims: [1] },
    img_ids: { data: fluxImageIds(h, h), dims: [tokens, 3] },
    txt_ids: { data: new Float32Array(L * 3), dims: [L, 3] },
  };
  await model.run(feeds, ['out_sample']);
  const ms: number[] = [];
  for (let i = 0; i < request.repeats; i++) {
    const t = performance.now();
    await model.run(feeds, ['out_sample']);
    ms.push(performance.now() - t);
  }
  await model.release();
  return { seconds: openSeconds, maxRssBytes: maxRss(), rssBeforeBytes, ms, loadAverage: loadavg()[0] };
}

main(JSON.parse(process.argv[2]) as FluxChildRequest).then(
  (r) => console.log(JSON.stringify(r)),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
