/**
 * The streamed answer every image route shares (`stream: true`, OpenAI's streaming image API plus our
 * progress events; README "Streaming"): run the task, answer with an event stream once the GPU
 * service admitted the job (a refusal before that is thrown as a normal error response), then write
 * progress, partial images, one completed event per image, or an `error` event. The run goes on when the
 * client disconnects (waitUntil), so the task still ends with its images stored.
 */
import type { Context } from 'hono';
import type { ImageUsage } from '@image-api/shared/api/openai-images';
import type { AppEnv } from '../env';
import { ApiError } from '../lib/api-error';
import type { GenerationSlot } from '../middleware/rate-limit';
import { keepRunning } from './background';
import { OpenAiImageStream, type StreamKind } from './openai-image-stream';
import { runGeneration, type RunGenerationDeps, type RunGenerationInput, type RunGenerationResult } from './run-generation';
import { SseWriter, SSE_HEADERS } from './sse-writer';
import { signedTaskImages, type LinkSigning } from './task-json';

/** Inputs of {@link streamTask}. */
export interface StreamTaskInput {
  deps: RunGenerationDeps;
  input: RunGenerationInput;
  /** Event names: `image_generation.*` (generations, variations) or `image_edit.*` (edits), as OpenAI's. */
  kind: StreamKind;
  /** OpenAI's quality for the events (low | medium | high), when the request gave one. */
  quality?: 'low' | 'medium' | 'high';
  /** `url` adds a signed link to each completed event; b64_json is always there, as in OpenAI's stream. */
  responseFormat: 'url' | 'b64_json';
  outputFormat: string;
  /** OpenAI `partial_images` (at most that many previews, spread over the run), null = every preview, 0 = none. */
  partialImages: number | null;
  slot: GenerationSlot | null;
  signing: () => LinkSigning;
  now: () => number;
}

/** Release the rate-limit slot when the run ends (images refunded on failure); never rejects. */
export function settleSlot(run: Promise<RunGenerationResult>, slot: GenerationSlot | null): Promise<void> {
  return run.then(
    () => slot?.release(true),
    () => slot?.release(false),
  );
}

/**
 * Answer a request with the task's event stream.
 * @throws ApiError when the GPU service refuses the job before admitting it (400/404/429/503 …).
 */
export async function streamTask(c: Context<AppEnv>, options: StreamTaskInput): Promise<Response> {
  const { deps, input, slot } = options;
  const writer = new SseWriter();
  const stream = new OpenAiImageStream(writer, {
    kind: options.kind,
    partialImages: options.partialImages,
    steps: input.job.steps,
    now: options.now,
    outputFormat: options.outputFormat,
    quality: options.quality,
    size: `${input.job.width}x${input.job.height}`,
  });
  let markAccepted!: () => void;
  const accepted = new Promise<void>((resolve) => (markAccepted = resolve));
  const run = runGeneration(deps, {
    ...input,
    onEvent: (event) => (event.event === 'accepted' ? markAccepted() : stream.onEvent(event)),
  });
  const finished = run
    .then(
      async ({ result, taskResult }) => {
        const links = options.responseFormat === 'url' ? await signedTaskImages(taskResult, options.signing()) : [];
        stream.completed(
          result.images.map((image, i) => ({ b64_json: image.b64, ...(links[i] ? { url: links[i].url } : {}), seed: image.seed })),
          { output_format: options.outputFormat, usage: taskResult.usage as ImageUsage, receipt: taskResult.receipt, task_id: input.task.id },
        );
      },
      (error: unknown) => {
        if (error instanceof ApiError) stream.failed(error);
        else stream.failed(new ApiError(500, 'server_error', 'internal_error', 'The generation failed on the edge.'));
      },
    )
    .finally(() => writer.close());
  keepRunning(c, Promise.all([finished, settleSlot(run, slot)]));
  // Admission errors (before the stream) become the response's status; the run is over then.
  await Promise.race([accepted, run]);
  return c.body(writer.readable, 200, { ...SSE_HEADERS });
}
