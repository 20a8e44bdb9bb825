/**
 * Where the time of a denoising step goes, measured on the real pipeline (`generate(model, job)` of
 * gpu-service/src/diffusion/pipelines/generate.ts) with the UNet's run calls timed by unet-timer.ts.
 *
 * The step window is the time between the first and the last step callback of a job, so it holds
 * steps 2..N completely (denoiser input preparation, the UNet run, guidance, the sampler update and the
 * callback) and none of the per-image fixed work (prompt encoding, initial noise, VAE decode):
 *   overhead share = 1 − (onnxruntime session.run time in the window) / (window wall time).
 * The same window gives steps per second, and the UNet call timestamps split each step into: before
 * the UNet (sampler loop top, the CFG denoiser building the [2B, C, h, w] sample x·c_in, runUnet's
 * feeds), the OnnxModel.run wrapper (tensor conversion), onnxruntime itself, and after the UNet
 * (guidance D_u + s·(D_c − D_u), the sampler update, the step callback). Of several timed jobs the
 * fastest is reported.
 */
import { GenerationJobSchema, type GenerationJob } from '@image-api/shared/generation-job';
import { generate } from '../../gpu-service/src/diffusion/pipelines/generate';
import type { DiffusionModel } from '../../gpu-service/src/models/diffusion-model';
import { instrumentUnet, type UnetCallTiming } from './unet-timer';

/** What to run. */
export interface PipelineBenchOptions {
  width: number;
  height: number;
  /** Steps per job (≥ 3: the window spans steps 2..N). */
  steps: number;
  /** Timed jobs (after one untimed warm-up job); the figures come from the fastest one. */
  repeats: number;
  /** Canonical sampler id (default euler: one UNet call per step, no extra sampler maths). */
  sampler?: string;
  /** cfg_scale (default 7: conditional and unconditional halves in one UNet run, as in production). */
  cfgScale?: number;
}

/** Per-step time split, milliseconds per step (averaged over all timed steps). */
export interface StepBreakdownMs {
  /** Wall time of one step. */
  step: number;
  /** Native onnxruntime InferenceSession.run. */
  onnxruntime: number;
  /** OnnxModel.run minus session.run: converting feeds to onnxruntime tensors and the outputs back. */
  onnxWrapper: number;
  /** From the step's start to the UNet call: sampler loop top, CFG sample x·c_in, runUnet feeds. */
  beforeUnet: number;
  /** From the UNet's return to the step callback: guidance, sampler update, callback (and, for samplers
   * with several UNet calls per step, the work between them). */
  afterUnet: number;
}

/** Result of benchPipeline. */
export interface PipelineBenchResult {
  model: string;
  width: number;
  height: number;
  steps: number;
  repeats: number;
  sampler: string;
  cfgScale: number;
  /** Steps per second inside the step window (one image, CFG as configured). */
  stepsPerSecond: number;
  /** Share of step wall time spent outside onnxruntime's session.run (0..1). */
  overheadShare: number;
  /** Step wall time / pure onnxruntime time (1 = no overhead). */
  stepOverOnnxruntime: number;
  breakdownMs: StepBreakdownMs;
  /** Fastest wall time of one whole generate() call, ms (includes prompt encoding and VAE decode). */
  generateMs: number;
}

/**
 * Measure a model's step overhead and speed on the real pipeline.
 * @throws Error when steps < 3 or repeats < 1; whatever generate() throws for an unsupported job.
 */
export async function benchPipeline(model: DiffusionModel, options: PipelineBenchOptions): Promise<PipelineBenchResult> {
  const { width, height, steps, repeats } = options;
  if (steps < 3) throw new Error(`benchPipeline: steps must be ≥ 3, got ${steps}`);
  if (repeats < 1) throw new Error(`benchPipeline: repeats must be ≥ 1, got ${repeats}`);
  const sampler = options.sampler ?? 'euler';
  const cfgScale = options.cfgScale ?? 7;
  const job = (seed: number, jobSteps: number): GenerationJob =>
    GenerationJobSchema.parse({
      id: `bench-${seed}`,
      model: model.name,
      prompt: 'a photo of a red apple on a wooden table',
      negative_prompt: 'blurry',
      width,
      height,
      seed,
      steps: jobSteps,
      sampler,
      scheduler: 'normal',
      cfg_scale: cfgScale,
    });

  const timer = instrumentUnet(model);
  try {
    await generate(model, job(0, 3)); // warm-up: onnxruntime allocates its buffers for this shape once
    // Each repeat is measured alone; the fastest one is reported (the one least disturbed by other
    // processes on the machine, as timeit's min): overhead is a ratio inside one repeat.
    let best: WindowTotals | undefined;
    const generateMs: number[] = [];
    for (let r = 0; r < repeats; r++) {
      timer.clear();
      const stepTimes: number[] = [];
      const start = performance.now();
      await generate(model, job(1 + r, steps), { onStep: () => void stepTimes.push(performance.now()) });
      generateMs.push(performance.now() - start);
      const current = windowTotals(stepTimes, timer.calls);
      if (!best || current.windowMs / current.steps < best.windowMs / best.steps) best = current;
    }
    const totals = best!;
    const perStep = (ms: number) => ms / totals.steps;
    const step = perStep(totals.windowMs);
    return {
      model: model.name,
      width,
      height,
      steps,
      repeats,
      sampler,
      cfgScale,
      stepsPerSecond: 1000 / step,
      overheadShare: 1 - totals.sessionMs / totals.windowMs,
      stepOverOnnxruntime: totals.windowMs / totals.sessionMs,
      breakdownMs: {
        step,
        onnxruntime: perStep(totals.sessionMs),
        onnxWrapper: perStep(totals.wrapperMs - totals.sessionMs),
        beforeUnet: perStep(totals.beforeMs),
        afterUnet: perStep(totals.windowMs - totals.beforeMs - totals.wrapperMs),
      },
      generateMs: Math.min(...generateMs),
    };
  } finally {
    timer.restore();
  }
}

/** Sums over the step window of one job, ms. */
interface WindowTotals {
  steps: number;
  windowMs: number;
  /** onnxruntime session.run. */
  sessionMs: number;
  /** OnnxModel.run (session.run included). */
  wrapperMs: number;
  /** From each step's start to its first UNet call. */
  beforeMs: number;
}

/**
 * Split the window between the first and the last step callback into steps (callback to callback) and
 * sum, per step, the UNet calls inside it and the time before its first UNet call.
 * @throws Error when a step of the window has no UNet call (the instrumentation missed it).
 */
function windowTotals(stepTimes: number[], calls: readonly UnetCallTiming[]): WindowTotals {
  const totals: WindowTotals = { steps: stepTimes.length - 1, windowMs: stepTimes[stepTimes.length - 1] - stepTimes[0], sessionMs: 0, wrapperMs: 0, beforeMs: 0 };
  for (let i = 1; i < stepTimes.length; i++) {
    const inStep = calls.filter((c) => c.wrapperStart >= stepTimes[i - 1] && c.wrapperEnd <= stepTimes[i]);
    if (inStep.length === 0) throw new Error(`benchPipeline: no UNet call timed in step ${i + 1}`);
    totals.beforeMs += inStep[0].wrapperStart - stepTimes[i - 1];
    for (const c of inStep) {
      totals.sessionMs += c.sessionEnd - c.sessionStart;
      totals.wrapperMs += c.wrapperEnd - c.wrapperStart;
    }
  }
  return totals;
}
