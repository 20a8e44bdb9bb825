import { z } from 'zod';
import { AsyncTaskTypeSchema, type AsyncTaskType } from '@image-api/shared/api/async-tasks';
import { GenerationJobSchema, OutputFormatSchema } from '@image-api/shared/generation-job';
import type { EdgeBindings } from '../env';

/** The Queue message of one async task: only its id (the row holds everything else). */
export const AsyncTaskMessageSchema = z.object({ task_id: z.string().min(1).max(128) });
export type AsyncTaskMessage = z.infer<typeof AsyncTaskMessageSchema>;

/** Task style written in the tasks table per endpoint (task-types.ts TaskStyle). */
export const ASYNC_TASK_STYLES: Readonly<Record<AsyncTaskType, string>> = {
  TXT_TO_IMG: 'async.txt2img',
  IMG_TO_IMG: 'async.img2img',
  INPAINTING: 'async.inpainting',
};

/**
 * What POST /v3/async/* stores as the task row's request_json: the GenerationJob built at submit time
 * (seed already picked, so a retry reproduces the same images) WITHOUT its init_image/mask, which
 * live in R2 (`inputs`: object keys) because rows and Queue messages are size-limited; the public
 * origin for signed links in webhook bodies; the output format; the submit-time request fields worth
 * keeping for debugging (images removed).
 */
export const AsyncTaskRecordSchema = z.object({
  kind: z.literal('async'),
  task_type: AsyncTaskTypeSchema,
  job: GenerationJobSchema.omit({ init_image: true, mask: true }),
  inputs: z.object({ init_image: z.string().optional(), mask: z.string().optional() }),
  response_image_type: OutputFormatSchema,
  /** e.g. "https://api.example.com" — where /v1/files links point. */
  origin: z.string(),
  request: z.record(z.string(), z.unknown()),
});
export type AsyncTaskRecord = z.infer<typeof AsyncTaskRecordSchema>;
export type AsyncTaskRecordInput = z.input<typeof AsyncTaskRecordSchema>;

/**
 * The bindings the async task API adds to the Worker (wrangler.toml): the Queue producer, the task
 * database (D1 `DB`, owned by the task layer) and the webhook secret. Declared here so this module
 * does not depend on env.ts listing them; `EdgeBindings & AsyncTaskBindings` is what it reads.
 */
export interface AsyncTaskBindings {
  /** Queue producer: one AsyncTaskMessage per submitted task. */
  ASYNC_TASKS: Queue<AsyncTaskMessage>;
  /** D1: the tasks table (edge/migrations). */
  DB: D1Database;
  /** Secret: HMAC-SHA256 key of X-Webhook-Signature. Without it, requests with a webhook are refused. */
  WEBHOOK_SIGNING_SECRET?: string;
  /** Development flag shared with image_url: "true" accepts http:// webhook URLs. */
  ALLOW_HTTP_IMAGE_URLS?: string;
  /** Development flag ("true" under `npm start`): webhook receivers on 127.0.0.1 / localhost / [::1]. */
  ALLOW_LOCAL_WEBHOOK_URLS?: string;
}

/** The Worker env as the async task code reads it. */
export type AsyncTaskEnv = EdgeBindings & AsyncTaskBindings;

/** `env` seen with the async task bindings (a type view; nothing is checked or copied). */
export function asyncTaskEnv(env: EdgeBindings): AsyncTaskEnv {
  return env as AsyncTaskEnv;
}
