import type { Context } from 'hono';
import type { ImageData, ImageUsage } from '@image-api/shared/api/openai-images';
import type { GenerationJobInput, GenerationParams, GenerationResult } from '@image-api/shared/generation-job';
import type { AppEnv } from '../env';
import type { GpuClient } from '../gpu/backend-client';
import type { EdgeConfig } from '../lib/edge-config';
import { acquireGenerationSlot, type GenerationSlot } from '../middleware/rate-limit';
import { keepRunning } from '../tasks/background';
import { runGeneration, type RunGenerationDeps, type RunGenerationInput } from '../tasks/run-generation';
import type { StreamKind } from '../tasks/openai-image-stream';
import { settleSlot, streamTask } from '../tasks/stream-task';
import { signedTaskImages, type LinkSigning } from '../tasks/task-json';
import { TaskStore } from '../tasks/task-store';
import { jobForStorage } from '../tasks/task-types';
import { jobCost } from './image-job';
import { storeTaskInputs, type TaskInput } from './input-objects';

/** Inputs of {@link runInputJob}. */
export interface RunInputJobOptions {
  config: EdgeConfig;
  gpu: GpuClient;
  /** The job (id = task id, tenant = the key's tenant), init_image/mask inline. */
  job: GenerationJobInput;
  /** Task `style`: "openai.edits", "openai.variations", "img2img". */
  style: string;
  /** The validated request as the task row keeps it (small: no image data). */
  request: unknown;
  /** The images that went in, stored beside the outputs (input-<n>.<ext>). */
  inputs: readonly TaskInput[];
  responseFormat: 'url' | 'b64_json';
  /** Signed-link lifetime, seconds (resolveLinkTtl). */
  linkTtlSeconds: number;
  /** Extra R2 custom metadata per output image (request fields such as user, quality, sampler names). */
  metadata?: Record<string, string | number | undefined>;
  /** Clock in unix ms. */
  now: () => number;
  /**
   * Input checks that cost CPU (the mask's pixel scan), run once the rate limiter admitted the request and
   * before the task row exists: a refusal here is charged to the key's request rate (images are refunded)
   * and leaves nothing behind.
   */
  admittedChecks?: () => Promise<void>;
  /** Renames a GPU service error's job field to the request's (RunGenerationInput.publicParam). */
  publicParam?: (param: string | null) => string | null;
}

/** What {@link runInputJob} returns: the response parts every image route shares. */
export interface RunInputJobResult {
  /** Unix seconds. */
  created: number;
  data: ImageData[];
  usage: ImageUsage;
  /** The reproducibility receipt (model + hash, sampler, scheduler, seeds, steps, cfg, size, versions). */
  receipt: GenerationParams;
  result: GenerationResult;
}

/** A created task with its inputs stored, its rate-limit slot held, ready to run. */
interface StartedInputTask {
  deps: RunGenerationDeps;
  input: RunGenerationInput;
  slot: GenerationSlot | null;
}

/**
 * Steps 1–3 of {@link runInputJob}: rate-limit slot (jobCost), `x-task-id`, the admitted checks, the
 * QUEUED task row, the inputs stored in R2. The slot is released again if any of that fails.
 */
async function startInputTask(c: Context<AppEnv>, options: RunInputJobOptions): Promise<StartedInputTask> {
  const { job, now } = options;
  const apiKey = c.get('apiKey');
  c.header('x-task-id', job.id);
  const slot = await acquireGenerationSlot(c, job.batch_size ?? 1, jobCost(job), { taskId: job.id });
  try {
    await options.admittedChecks?.();
    const serverTiming = c.get('timing');
    const store = new TaskStore(c.env.DB, { now, timing: serverTiming });
    // attempts = 1 at once (the job is submitted right after), so the runner needs no separate write for it.
    const task = await store.create(
      {
        id: job.id,
        owner: { tenant: apiKey.tenant, key_hash: apiKey.key_hash },
        key_name: apiKey.name,
        style: options.style,
        request: { request: options.request, job: jobForStorage(job) },
      },
      { submitting: true },
    );
    await storeTaskInputs(c.env.IMAGES, task, options.inputs);
    return {
      deps: { store, gpu: options.gpu, bucket: c.env.IMAGES, now, serverTiming, waitUntil: (work) => keepRunning(c, work) },
      input: { task, job, inserted: Promise.resolve(), metadata: options.metadata, publicParam: options.publicParam },
      slot,
    };
  } catch (error) {
    await slot?.release(false);
    throw error;
  }
}

function linkSigning(c: Context<AppEnv>, options: RunInputJobOptions): () => LinkSigning {
  return () => ({
    origin: new URL(c.req.url).origin,
    secret: options.config.linkSigningSecret,
    ttlSeconds: options.linkTtlSeconds,
    nowSeconds: options.now() / 1000,
  });
}

/**
 * Run one image-input job synchronously for a route, on the one task runner every style uses
 * (tasks/run-generation.ts):
 *  1. take a rate-limit slot for the job's images and compute units (jobCost; 429 before any work)
 *     and set `x-task-id`, then run `admittedChecks` (the costly input checks);
 *  2. create the QUEUED task row (style, owner, the request without image data);
 *  3. store the input images in R2 under the task's folder
 *     (`<tenant>/<date of the task>/<task>/input-<n>.<ext>`, beside the outputs `<i>.<ext>`); they
 *     are kept with the task whatever its outcome;
 *  4. run the job (GPU service → outputs in R2 → row SUCCEED/FAILED); the run continues under
 *     waitUntil if the client disconnects, so GET /v1/tasks/:id still has the result;
 *  5. build `data` (signed links valid `linkTtlSeconds`, or base64; with seeds), `usage`, `receipt`.
 * @throws ApiError: 429 from the rate limiter, the runner's errors (GPU service refusals, job
 *   failures), 500 `storage_failed`.
 */
export async function runInputJob(c: Context<AppEnv>, options: RunInputJobOptions): Promise<RunInputJobResult> {
  const { deps, input, slot } = await startInputTask(c, options);
  const run = runGeneration(deps, input);
  keepRunning(c, settleSlot(run, slot));
  const { result, taskResult } = await run;
  const links = options.responseFormat === 'url' ? await signedTaskImages(taskResult, linkSigning(c, options)()) : [];
  const data: ImageData[] = result.images.map((image, i) =>
    options.responseFormat === 'b64_json' ? { b64_json: image.b64, seed: image.seed } : { url: links[i].url, seed: image.seed },
  );
  return {
    created: Math.floor(taskResult.finished_at / 1000),
    data,
    usage: taskResult.usage,
    receipt: taskResult.receipt,
    result,
  };
}

/**
 * Steps 1–3 of {@link runInputJob}, then answer with the task's event stream (tasks/stream-task.ts):
 * progress, partial images (previews of the job's `preview` mode), one completed event per image.
 */
export async function streamInputJob(
  c: Context<AppEnv>,
  options: RunInputJobOptions & { outputFormat: string; partialImages: number | null; kind: StreamKind; quality?: 'low' | 'medium' | 'high' },
): Promise<Response> {
  const { deps, input, slot } = await startInputTask(c, options);
  return streamTask(c, {
    deps,
    input,
    kind: options.kind,
    quality: options.quality,
    responseFormat: options.responseFormat,
    outputFormat: options.outputFormat,
    partialImages: options.partialImages,
    slot,
    signing: linkSigning(c, options),
    now: options.now,
  });
}
