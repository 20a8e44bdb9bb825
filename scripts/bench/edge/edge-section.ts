/**
 * `npm run bench -- --edge` (section `edge`): the edge's critical path on the local stack (issue 18). One
 * small generation — tiny-analytic, 64×64, 1 step, `b64_json` — is sent, one at a time and interleaved in
 * one run (the order rotates every round, so the machine's other load hits every column alike):
 *  - `direct`: the same GenerationJob straight to the GPU service (POST /v1/jobs, JSON, with its token);
 *  - `edge`: POST /v1/images/generations through `wrangler dev` with the development key (no limits, so
 *    no rate-limit call);
 *  - `edge_limited`: the same with a key that has limits (BENCH_KEY_LIMITS), through the RateLimiter
 *    Durable Object's admission.
 * Client-side latency (request sent to body read) gives p50/p90 per column; the edge's `Server-Timing`
 * header (edge/src/lib/server-timing.ts) gives each request's phases: auth, ratelimit, db (task-row
 * writes the response waited for), gpu, r2, the rest of the Worker's own work (`worker_other` = total −
 * those), and `outside_worker` (client time − total: wrangler dev's proxy, workerd, the body transfer).
 * Each round also times GET /healthz through the edge (`hop`: the local proxy and workerd with no I/O).
 * The first answers are checked: the edge's image equals the GPU service's for the same seed.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { DEFAULT_CFG_SCALE, DEFAULT_SAMPLE_METHOD, DEFAULT_SCHEDULE_METHOD } from '@image-api/shared/api/openai-images';
import type { GenerationJobInput } from '@image-api/shared/generation-job';
import { resolveSampler, samplerJobFields } from '@image-api/shared/sampler-names';
import { parseServerTiming } from './server-timing-header';
import { generateTinyModel, TINY_DEFAULT_VARIANT } from '../../tiny-model/generate';
import { startBenchStack, type BenchStack } from './bench-stack';

/** The generation every column sends. */
export const EDGE_BENCH_JOB = { model: TINY_DEFAULT_VARIANT, width: 64, height: 64, steps: 1, response_format: 'b64_json' } as const;

/** The columns, in the order of the first round. */
export const EDGE_TARGETS = ['direct', 'edge', 'edge_limited'] as const;
export type EdgeTarget = (typeof EDGE_TARGETS)[number];

/** Phases of the breakdown (Server-Timing names, then the two derived ones). */
export const EDGE_PHASES = ['auth', 'ratelimit', 'db', 'gpu', 'r2', 'worker_other', 'outside_worker'] as const;
export type EdgePhase = (typeof EDGE_PHASES)[number];

/** Latency figures of one column, ms. */
export interface LatencyFigures {
  p50_ms: number;
  p90_ms: number;
  mean_ms: number;
}

/** What the edge section measured. */
export interface EdgeReport {
  job: typeof EDGE_BENCH_JOB;
  /** Timed requests per column (after `warmup` untimed ones each). */
  requests: number;
  warmup: number;
  latency: Record<EdgeTarget, LatencyFigures>;
  /** Per edge column: each phase's median and mean over the timed requests, ms (Server-Timing `db` calls: `db_calls`). */
  phases: Record<'edge' | 'edge_limited', Record<EdgePhase, { p50_ms: number; mean_ms: number }> & { db_calls: number }>;
  /** p50 of the edge column minus p50 of direct (the goal: ≤ 15 ms), and the same for the limited key. */
  edge_added_p50_ms: number;
  edge_limited_added_p50_ms: number;
  /** edge p50 / direct p50, edge_limited p50 / direct p50. */
  ratios: Record<string, number>;
  /** GET /healthz through the edge (no auth, no I/O: wrangler dev's proxy and workerd alone), timed in the same rounds. */
  hop: LatencyFigures;
  /** The edge's first image equals the GPU service's for the same seed. */
  image_matches_direct: boolean;
  load_average: [number, number];
}

/** Sizes of one edge section run. */
export interface EdgeSizes {
  requests: number;
  warmup: number;
}

/** Nearest-rank percentile of `values` (q in 0..1). @throws Error when empty. */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new Error('percentile of no values');
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

const mean = (values: readonly number[]) => values.reduce((a, b) => a + b, 0) / values.length;
const round = (x: number, digits = 2) => Number(x.toFixed(digits));

/** The GenerationJob the edge builds for the bench request (openai-images.ts buildGenerationJob), for the direct column. */
function directJob(seed: number): GenerationJobInput {
  return {
    id: randomUUID(),
    tenant: 'bench',
    model: EDGE_BENCH_JOB.model,
    mode: 'txt2img',
    prompt: 'a red apple',
    negative_prompt: '',
    width: EDGE_BENCH_JOB.width,
    height: EDGE_BENCH_JOB.height,
    batch_size: 1,
    seed,
    steps: EDGE_BENCH_JOB.steps,
    ...samplerJobFields(resolveSampler('sdcpp', DEFAULT_SAMPLE_METHOD, DEFAULT_SCHEDULE_METHOD)),
    cfg_scale: DEFAULT_CFG_SCALE,
    output: { format: 'png' },
    preview: 'none',
  } as GenerationJobInput;
}

/** One request of one column: client ms, the Server-Timing entries, the first image's base64. */
async function send(stack: BenchStack, target: EdgeTarget, seed: number): Promise<{ ms: number; timing: Map<string, { dur: number; calls: number }>; b64: string }> {
  const [url, init]: [string, RequestInit] =
    target === 'direct'
      ? [
          `${stack.gpuUrl}/v1/jobs`,
          { method: 'POST', headers: { authorization: `Bearer ${stack.serviceToken}`, 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify(directJob(seed)) },
        ]
      : [
          `${stack.edgeUrl}/v1/images/generations`,
          {
            method: 'POST',
            headers: { authorization: `Bearer ${target === 'edge' ? stack.devKey : stack.limitedKey}`, 'content-type': 'application/json' },
            body: JSON.stringify({
              prompt: 'a red apple',
              model: EDGE_BENCH_JOB.model,
              size: `${EDGE_BENCH_JOB.width}x${EDGE_BENCH_JOB.height}`,
              sampling_steps: EDGE_BENCH_JOB.steps,
              response_format: EDGE_BENCH_JOB.response_format,
              seed,
            }),
          },
        ];
  const start = performance.now();
  const response = await fetch(url, init);
  const text = await response.text();
  const ms = performance.now() - start;
  if (response.status !== 200) throw new Error(`${target}: HTTP ${response.status}: ${text.slice(0, 500)}`);
  const body = JSON.parse(text) as { images?: Array<{ b64: string }>; data?: Array<{ b64_json: string }> };
  const b64 = target === 'direct' ? body.images?.[0]?.b64 : body.data?.[0]?.b64_json;
  if (!b64) throw new Error(`${target}: no image in the answer: ${text.slice(0, 300)}`);
  const timing = new Map<string, { dur: number; calls: number }>();
  for (const entry of parseServerTiming(response.headers.get('server-timing'))) {
    timing.set(entry.name, { dur: entry.durMs, calls: entry.desc ? Number.parseInt(entry.desc, 10) || 1 : 1 });
  }
  if (target !== 'direct' && !timing.has('total')) throw new Error(`${target}: the edge sent no Server-Timing header (SERVER_TIMING = "false"?)`);
  return { ms, timing, b64 };
}

/**
 * Run the edge section: write tiny-analytic into `modelsDir` when missing, start the stack, send
 * `warmup` then `requests` requests per column, interleaved, and stop the stack.
 * @throws Error when the stack does not start or a request is not answered 200 with an image.
 */
export async function runEdgeSection(options: { modelsDir: string; sizes: EdgeSizes; loadAverage: () => number }, log: (line: string) => void): Promise<EdgeReport> {
  const loadAtStart = options.loadAverage();
  await generateTinyModel(path.join(options.modelsDir, TINY_DEFAULT_VARIANT));
  const stack = await startBenchStack(options.modelsDir, log);
  try {
    const { requests, warmup } = options.sizes;
    log(`edge: ${warmup} warm-up and ${requests} timed requests per column (${EDGE_TARGETS.join(', ')}), interleaved`);
    const imageMatches = (await send(stack, 'direct', 7)).b64 === (await send(stack, 'edge', 7)).b64;
    const hops: number[] = [];
    const samples = new Map<EdgeTarget, Array<Awaited<ReturnType<typeof send>>>>(EDGE_TARGETS.map((t) => [t, []]));
    for (let round = 0; round < warmup + requests; round++) {
      // Rotate which column goes first so none always follows another.
      const order = EDGE_TARGETS.map((_, i) => EDGE_TARGETS[(i + round) % EDGE_TARGETS.length]);
      for (const target of order) {
        const sample = await send(stack, target, 1000 + round);
        if (round >= warmup) samples.get(target)!.push(sample);
      }
      const start = performance.now();
      const health = await fetch(`${stack.edgeUrl}/healthz`);
      await health.arrayBuffer();
      if (round >= warmup) hops.push(performance.now() - start);
      if ((round + 1) % 50 === 0) log(`edge: ${round + 1}/${warmup + requests} rounds`);
    }
    const latency = Object.fromEntries(
      EDGE_TARGETS.map((t) => {
        const ms = samples.get(t)!.map((s) => s.ms);
        return [t, { p50_ms: round(percentile(ms, 0.5)), p90_ms: round(percentile(ms, 0.9)), mean_ms: round(mean(ms)) }];
      }),
    ) as Record<EdgeTarget, LatencyFigures>;
    const phases = Object.fromEntries(
      (['edge', 'edge_limited'] as const).map((t) => {
        const list = samples.get(t)!;
        const phaseOf = (s: (typeof list)[number], phase: EdgePhase): number => {
          const dur = (name: string) => s.timing.get(name)?.dur ?? 0;
          const total = dur('total');
          if (phase === 'outside_worker') return s.ms - total;
          if (phase === 'worker_other') return total - ['auth', 'ratelimit', 'db', 'gpu', 'r2'].reduce((sum, name) => sum + dur(name), 0);
          return dur(phase);
        };
        const figures: Record<string, unknown> = Object.fromEntries(
          EDGE_PHASES.map((phase) => {
            const values = list.map((s) => phaseOf(s, phase));
            return [phase, { p50_ms: round(percentile(values, 0.5)), mean_ms: round(mean(values)) }];
          }),
        );
        figures.db_calls = round(mean(list.map((s) => s.timing.get('db')?.calls ?? 0)), 2);
        return [t, figures];
      }),
    ) as EdgeReport['phases'];
    const report: EdgeReport = {
      job: EDGE_BENCH_JOB,
      requests,
      warmup,
      latency,
      phases,
      edge_added_p50_ms: round(latency.edge.p50_ms - latency.direct.p50_ms),
      edge_limited_added_p50_ms: round(latency.edge_limited.p50_ms - latency.direct.p50_ms),
      ratios: {
        edge_over_direct_p50: round(latency.edge.p50_ms / latency.direct.p50_ms, 3),
        edge_limited_over_direct_p50: round(latency.edge_limited.p50_ms / latency.direct.p50_ms, 3),
      },
      hop: { p50_ms: round(percentile(hops, 0.5)), p90_ms: round(percentile(hops, 0.9)), mean_ms: round(mean(hops)) },
      image_matches_direct: imageMatches,
      load_average: [round(loadAtStart), round(options.loadAverage())],
    };
    log(`edge: p50 direct ${latency.direct.p50_ms} ms, edge ${latency.edge.p50_ms} ms (+${report.edge_added_p50_ms}), limited key ${latency.edge_limited.p50_ms} ms (+${report.edge_limited_added_p50_ms})`);
    return report;
  } finally {
    await stack.stop();
  }
}
