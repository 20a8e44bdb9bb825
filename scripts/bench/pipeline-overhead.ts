/**
 * Where the time of a denoising step goes, measured on the real pipeline (`generate(model, job)` of
 * gpu-service/src/diffusion/pipelines/generate.ts) with the UNet's run calls timed by unet-timer.ts.
 *
 * The step window is the time between the first and the last step callback of a job, so it holds
 * steps 2..N completely (denoiser input preparation, the UNet run, guidance, the sampler update and the
 * callback) and none of the per-image fixed work (prompt encoding, initial noise, VAE decode):
 *   overhead share = 1 − (onnxruntime session.run time in the window) / (window wall time).
 * The same window also gives steps per second. Of several timed jobs the fastest is reported. A second, direct measurement of the CFG denoiser
 * (gpu-service/src/diffusion/cfg-denoiser.ts) on the same model splits the overhead into its parts.
 */
import { GenerationJobSchema, type GenerationJob } from '../../shared/src/generation-job';
import { createCfgDenoiser } from '../../gpu-service/src/diffusion/cfg-denoiser';
import { generate, passSigmas } from '../../gpu-service/src/diffusion/pipelines/generate';
import { encodePromptPair } from '../../gpu-service/src/diffusion/text-conditioning';
import type { DiffusionModel } from '../../gpu-service/src/models/diffusion-model';
import { instrumentUnet } from './unet-timer';

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
  /** The CFG denoiser and runUnet outside OnnxModel.run: building the UNet sample (x·c_in), timestep, guidance. */
  cfgDenoiser: number;
  /** Everything else in the step: the sampler's update, sigma checks, the step callback. */
  samplerAndCallback: number;
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
    let best: { windowMs: number; windowSteps: number; sessionMs: number; wrapperMs: number } | undefined;
    const generateMs: number[] = [];
    for (let r = 0; r < repeats; r++) {
      timer.clear();
      const stepTimes: number[] = [];
      const start = performance.now();
      await generate(model, job(1 + r, steps), { onStep: () => void stepTimes.push(performance.now()) });
      generateMs.push(performance.now() - start);
      const first = stepTimes[0];
      const last = stepTimes[stepTimes.length - 1];
      const inWindow = timer.calls.filter((c) => c.wrapperStart >= first && c.wrapperEnd <= last);
      const windowSteps = stepTimes.length - 1;
      const current = {
        windowMs: last - first,
        windowSteps,
        sessionMs: inWindow.reduce((s, c) => s + (c.sessionEnd - c.sessionStart), 0),
        wrapperMs: inWindow.reduce((s, c) => s + (c.wrapperEnd - c.wrapperStart), 0),
      };
      if (!best || current.windowMs / windowSteps < best.windowMs / best.windowSteps) best = current;
    }
    const { windowMs, windowSteps, sessionMs, wrapperMs } = best!;
    const cfgDenoiserMs = await measureDenoiserOutsideUnet(model, job(99, steps), timer);
    const step = windowMs / windowSteps;
    const onnxruntime = sessionMs / windowSteps;
    const onnxWrapper = (wrapperMs - sessionMs) / windowSteps;
    return {
      model: model.name,
      width,
      height,
      steps,
      repeats,
      sampler,
      cfgScale,
      stepsPerSecond: 1000 / step,
      overheadShare: 1 - sessionMs / windowMs,
      stepOverOnnxruntime: windowMs / sessionMs,
      breakdownMs: {
        step,
        onnxruntime,
        onnxWrapper,
        cfgDenoiser: cfgDenoiserMs,
        samplerAndCallback: Math.max(0, step - onnxruntime - onnxWrapper - cfgDenoiserMs),
      },
      generateMs: Math.min(...generateMs),
    };
  } finally {
    timer.restore();
  }
}

/**
 * Milliseconds per call that the CFG denoiser (with runUnet) spends outside OnnxModel.run, measured by
 * calling the pipeline's own denoiser directly at the job's sigmas: one untimed pass (so V8 has
 * optimised the fresh closure, as it has inside a long job), then DENOISER_PASSES timed passes.
 */
async function measureDenoiserOutsideUnet(model: DiffusionModel, job: GenerationJob, timer: ReturnType<typeof instrumentUnet>): Promise<number> {
  const h = job.height / 8;
  const w = job.width / 8;
  const { cond, uncond } = await encodePromptPair(model, job.prompt, job.negative_prompt);
  const denoise = createCfgDenoiser({
    model,
    batch: 1,
    latentHeight: h,
    latentWidth: w,
    cond: cond.hidden,
    uncond: uncond.hidden,
    tokens: cond.tokens,
    cfgScales: [job.cfg_scale],
  });
  const sigmas = passSigmas(job, job.steps, 1, model);
  const x = new Float32Array(model.latentChannels * h * w).map((_, k) => Math.sin(k) * sigmas[0]);
  const pass = async () => {
    let totalMs = 0;
    for (let i = 0; i < sigmas.length - 1; i++) {
      const start = performance.now();
      await denoise(x, sigmas[i]);
      totalMs += performance.now() - start;
    }
    return totalMs;
  };
  await pass();
  timer.clear();
  let totalMs = 0;
  for (let r = 0; r < DENOISER_PASSES; r++) totalMs += await pass();
  const { wrapperMs, calls } = timer.totalsSince(0);
  return (totalMs - wrapperMs) / calls;
}

/** Timed passes over the sigmas in measureDenoiserOutsideUnet. */
const DENOISER_PASSES = 2;
