/**
 * One GenerationJob from start to encoded files: load the model, run the pipeline, encode each image
 * with its reproducibility receipt.
 */
import { seedAt } from '@image-api/shared/seed';
import type { GenerationJob, GenerationParams, GenerationResult } from '@image-api/shared/generation-job';
import { generate, type DecodedImage, type GenerateHooks, type GenerateModels } from '../diffusion/pipelines/generate';
import { tokenizeWeightedPrompt } from '../diffusion/prompt/chunk-prompt';
import { encodeImage, mimeTypeOf } from '../images/encode-image';
import type { DiffusionModel } from '../models/diffusion-model';
import { ONNXRUNTIME_VERSION } from '../onnx/session';
import { ENGINE_VERSION } from '../version';
import { applyImageStages, NO_STAGES, type JobStages } from '../postprocess/job-postprocess';

/** The receipt: every value that decides the pixels (the same receipt reproduces the same image). */
export function receiptOf(model: DiffusionModel, job: GenerationJob): GenerationParams {
  return {
    model: model.name,
    model_hash: model.contentHash,
    mode: job.mode,
    prompt: job.prompt,
    negative_prompt: job.negative_prompt,
    width: job.width,
    height: job.height,
    batch_size: job.batch_size,
    seed: job.seed,
    seeds: Array.from({ length: job.batch_size }, (_, i) => seedAt(job.seed, i)),
    steps: job.steps,
    sampler: job.sampler,
    scheduler: job.scheduler,
    cfg_scale: job.cfg_scale,
    ...(job.mode !== 'txt2img' ? { strength: job.strength } : {}),
    rng: job.rng,
    // SDXL micro-conditioning, when set and used (models without time ids ignore it).
    ...(model.sdxl
      ? Object.fromEntries(
          (['original_size', 'crops_coords_top_left', 'target_size', 'aesthetic_score', 'negative_aesthetic_score'] as const).filter((k) => job[k] !== undefined).map((k) => [k, job[k]]),
        )
      : {}),
    ...(model.addons ?? {}),
    ...(job.hires_fix ? { hires_fix: job.hires_fix } : {}),
    ...(job.background === 'transparent' ? { background: job.background } : {}),
    text_tokens: textTokens(model, job.prompt) + textTokens(model, job.negative_prompt),
    engine_version: ENGINE_VERSION,
    onnxruntime_version: ONNXRUNTIME_VERSION,
  };
}

/** CLIP tokens of a prompt as the model's tokenizer counts them (weights syntax removed; 0 when it cannot parse). */
function textTokens(model: DiffusionModel, text: string): number {
  try {
    return tokenizeWeightedPrompt(model.tokenizer, text).tokenCount;
  } catch {
    return 0; // the pipeline has already refused an unparsable prompt by the time a receipt is made
  }
}

/**
 * Run `job` on `model` alone (the lead's pipeline; with `models.refiner` for a base → refiner job), run its
 * post-processing stages (`stages`: the hires upscaler inside the pipeline, matting after it) and encode the results.
 */
export async function runJob(model: DiffusionModel, job: GenerationJob, hooks: GenerateHooks = {}, models: GenerateModels = {}, stages: JobStages = NO_STAGES): Promise<GenerationResult> {
  const started = performance.now();
  const images = await generate(model, job, hooks, { ...models, ...(stages.upscaler ? { upscaler: stages.upscaler } : {}) });
  const result = await encodeResult(model, job, images, started, stages, hooks.signal);
  return models.refiner && (job.refiner_switch_at ?? 0) > 0 ? withRefinerReceipt(result, models.refiner, job) : result;
}

/** The receipt names the refiner and its hash when one ran (the same receipt then reproduces the image). */
function withRefinerReceipt(result: GenerationResult, refiner: DiffusionModel, job: GenerationJob): GenerationResult {
  return { ...result, params: { ...result.params, refiner_model: refiner.name, refiner_model_hash: refiner.contentHash, refiner_switch_at: job.refiner_switch_at } };
}

/**
 * Run the image stages (matting) on decoded images and encode them into the job's result (files in
 * job.output.format with the receipt embedded; `params.postprocess` lists every stage that ran with its model hash).
 * @param started performance.now() when the job's generation began (for timings.total_ms).
 */
export async function encodeResult(model: DiffusionModel, job: GenerationJob, decoded: DecodedImage[], started: number, stages: JobStages = NO_STAGES, signal?: AbortSignal): Promise<GenerationResult> {
  const { images, ran } = await applyImageStages(stages, decoded, signal);
  const params: GenerationParams = { ...receiptOf(model, job), ...(ran.length ? { postprocess: ran } : {}) };
  const encoded = await Promise.all(
    images.map(async (img) => {
      const receipt = JSON.stringify({ ...params, seed: img.seed, index: img.index });
      const bytes = await encodeImage(img.rgb, img.width, img.height, job.output.format, job.output.quality, receipt, img.alpha);
      return { index: img.index, seed: img.seed, mime_type: mimeTypeOf(job.output.format), b64: bytes.toString('base64') };
    }),
  );
  return { id: job.id, images: encoded, params, timings: { total_ms: performance.now() - started } };
}
