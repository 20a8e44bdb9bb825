import { SeedSchema } from '@image-api/shared/seed';
import { z } from 'zod';
import { ErrorBodySchema } from '@image-api/shared/errors';
import { GenerationParamsSchema } from '@image-api/shared/generation-job';
import { ImageUsageSchema } from '@image-api/shared/api/openai-images';

/**
 * Life of a task: QUEUED (waiting at the edge queue or in the GPU service's queue) → PROCESSING
 * (the GPU service started it) → SUCCEED | FAILED | CANCELLED. A retry (async tasks) may put a
 * QUEUED/PROCESSING task back to QUEUED; the three end states are final.
 */
export const TASK_STATUSES = ['QUEUED', 'PROCESSING', 'SUCCEED', 'FAILED', 'CANCELLED'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** The end states: a task in one of them never changes again. */
export const FINAL_TASK_STATUSES: ReadonlySet<TaskStatus> = new Set(['SUCCEED', 'FAILED', 'CANCELLED']);

/** Whether `status` is an end state. */
export function isFinalStatus(status: TaskStatus): boolean {
  return FINAL_TASK_STATUSES.has(status);
}

/**
 * Which public API created a task (free text in the table; these are the values the edge writes):
 * `openai.generations` (POST /v1/images/generations, sync or stream), `openai.edits`,
 * `openai.variations`, `img2img` (/v1/img2img), `async.txt2img`, `async.img2img`, `async.inpainting`.
 */
export type TaskStyle = string;

/** Who owns a task: the API key's tenant and SHA-256 key hash. Reads match both. */
export interface TaskOwner {
  tenant: string;
  key_hash: string;
}

/** The error object of a failed task: the shared error body's `error`. */
export const TaskErrorSchema = ErrorBodySchema.shape.error;
export type TaskError = z.infer<typeof TaskErrorSchema>;

/** One stored output image of a finished task. */
export const TaskResultImageSchema = z.object({
  /** Index within the batch (0-based). */
  index: z.number().int(),
  /** Seed of this image (image i of a batch uses seed + i; a decimal string above 2^53 − 1). */
  seed: SeedSchema,
  /** R2 object key `<tenant>/<yyyy>/<mm>/<dd>/<task>/<i>.<ext>`. */
  key: z.string(),
  /** e.g. "image/png". */
  mime_type: z.string(),
});
export type TaskResultImage = z.infer<typeof TaskResultImageSchema>;

/**
 * result_json of a SUCCEED task: the stored images, the reproducibility receipt (the GPU
 * service's resolved `params`: model + content hash, sampler, scheduler, seeds, steps, cfg, size,
 * engine and onnxruntime versions), the usage and when it finished (unix ms).
 */
export const TaskResultSchema = z.object({
  images: z.array(TaskResultImageSchema),
  receipt: GenerationParamsSchema,
  usage: ImageUsageSchema,
  finished_at: z.number().int(),
});
export type TaskResult = z.infer<typeof TaskResultSchema>;

/** A task row as the store returns it (JSON columns parsed). Times are unix milliseconds. */
export interface TaskRow {
  id: string;
  tenant: string;
  key_hash: string;
  key_name: string;
  style: TaskStyle;
  status: TaskStatus;
  /** Why it failed / was cancelled / was re-queued (a sentence), else null. */
  reason: string | null;
  /** The error of a FAILED or CANCELLED task, else null. */
  error: TaskError | null;
  /** 0..100. */
  progress_percent: number;
  /** Seconds until done as the GPU service last estimated, else null. */
  eta_seconds: number | null;
  /** The style-specific request the route stored (its own shape). */
  request: unknown;
  /** Set when SUCCEED. */
  result: TaskResult | null;
  webhook_url: string | null;
  /** Base URL of the GPU service the job was last submitted to, else null. */
  backend: string | null;
  /** How many times the job was submitted to a GPU service. */
  attempts: number;
  created_at: number;
  updated_at: number;
}

/** What a route gives the store to create a task (status QUEUED, progress 0, attempts 0). */
export interface NewTask {
  id: string;
  owner: TaskOwner;
  key_name: string;
  style: TaskStyle;
  /** Stored as JSON (keep it small: no base64 images; D1 rows are limited to about 2 MB). */
  request: unknown;
  webhook_url?: string | null;
}

/**
 * A GenerationJob as a task row keeps it in request_json: the base64 source image and mask are
 * replaced by their length (they are large, and routes store inputs in R2 themselves).
 */
export function jobForStorage<T extends { init_image?: string; mask?: string }>(job: T): Omit<T, 'init_image' | 'mask'> & {
  init_image_chars?: number;
  mask_chars?: number;
} {
  const { init_image: initImage, mask, ...rest } = job;
  return {
    ...rest,
    ...(initImage !== undefined ? { init_image_chars: initImage.length } : {}),
    ...(mask !== undefined ? { mask_chars: mask.length } : {}),
  };
}
