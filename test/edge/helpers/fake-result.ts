import { seedAt, seedValue } from '@image-api/shared/seed';
import type { GenerationJob, GenerationResult } from '@image-api/shared/generation-job';
import { encodeBase64 } from '../../../edge/src/lib/base64';
import { solidPng } from './png';

/** Options of {@link fakeGenerationResult}; the defaults are those of fake-gpu-service.ts. */
export interface FakeResultOptions {
  engineVersion?: string;
  onnxruntimeVersion?: string;
  totalMs?: number;
  /** Colour of the image with this seed (so images of a batch differ). */
  colour?: (seed: number) => [number, number, number];
}

/** The text_tokens every fake receipt reports (the real service counts the prompt's CLIP tokens). */
export const FAKE_TEXT_TOKENS = 7;

/** Default image colour: varies with the seed. */
export function seedColour(seed: number): [number, number, number] {
  return [200, seed % 256, (seed >> 8) % 256];
}

/**
 * What a fake GPU service answers for `job`: one solid PNG of the job's size per image (seeds s + i) and
 * the receipt the real service builds from the job.
 */
export async function fakeGenerationResult(job: GenerationJob, options: FakeResultOptions = {}): Promise<GenerationResult> {
  const colour = options.colour ?? seedColour;
  const result: GenerationResult = {
    id: job.id,
    images: [],
    params: {
      model: job.model,
      model_hash: 'sha256:fake',
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
      rng: job.rng,
      // As the real service: the receipt says when the images carry a matting model's alpha.
      ...(job.background === 'transparent' ? { background: 'transparent' as const, postprocess: [{ stage: 'matting', model: job.matting_model ?? 'fake-matting', hash: 'fake' }] } : {}),
      text_tokens: FAKE_TEXT_TOKENS,
      engine_version: options.engineVersion ?? 'fake-0',
      onnxruntime_version: options.onnxruntimeVersion ?? '0.0.0',
    },
    timings: { total_ms: options.totalMs ?? 1 },
  };
  for (let i = 0; i < job.batch_size; i++) {
    const png = await solidPng(job.width, job.height, colour(Number(seedValue(seedAt(job.seed, i)) & 0xffffffffn)));
    result.images.push({ index: i, seed: seedAt(job.seed, i), mime_type: 'image/png', b64: encodeBase64(png) });
  }
  return result;
}
