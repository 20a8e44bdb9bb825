import type { Seed } from '@image-api/shared/seed';
import type { ImageUsage } from '@image-api/shared/api/openai-images';
import type { GenerationParams } from '@image-api/shared/generation-job';
import type { ApiError } from '../lib/api-error';
import { PartialImagePicker } from './partial-image-picker';
import type { GenerationEvent } from './run-generation';
import type { SseWriter } from './sse-writer';

/** The event-name prefix: OpenAI's `image_generation.*` for generations, `image_edit.*` for edits. */
export type StreamKind = 'image_generation' | 'image_edit';

/** Options of {@link OpenAiImageStream}. */
export interface OpenAiImageStreamOptions {
  kind: StreamKind;
  /** The request's output_format (partial images are JPEG previews; completed images have this format). */
  outputFormat: string;
  /** OpenAI's quality (low | medium | high) when the request gave one. */
  quality?: 'low' | 'medium' | 'high';
  /** "WxH" of the outputs; partial images have this size too. */
  size: string;
  /** OpenAI `partial_images` (0..3), or null for every preview (see PartialImagePicker). */
  partialImages: number | null;
  /** Steps of the job, the progress total until the GPU service reports its own. */
  steps: number;
  /** Clock in unix milliseconds. */
  now: () => number;
}

/** One finished image for {@link OpenAiImageStream.completed}: the file, and a signed link with response_format url. */
export interface CompletedImage {
  b64_json: string;
  url?: string;
  seed: Seed;
}

const FORMAT_OF_MIME: Record<string, string> = { 'image/png': 'png', 'image/jpeg': 'jpeg', 'image/webp': 'webp' };

/**
 * Writes a generation as OpenAI's streaming image events (README, "Streaming"), named
 * `<kind>.<event>` with kind `image_generation` (generations, variations) or `image_edit` (edits):
 * - `<kind>.progress` {step, total, eta_seconds, queue_position} — our extension: one per queue
 *   position change (step 0, queue_position k), at start and after every step;
 * - `<kind>.partial_image` {b64_json, partial_image_index, background, output_format, quality, size,
 *   created_at} for the previews the PartialImagePicker keeps (JPEG previews of the output size);
 * - `<kind>.completed` per image {b64_json, url (with response_format url), seed, background,
 *   output_format, quality, size, created_at, usage, receipt, task_id};
 * - `error` {type: "error", error: {code, message, param, type}} when the job fails.
 * Every payload repeats its event name in `type`, as OpenAI's does (SDK ImageGenStreamEvent /
 * ImageEditStreamEvent).
 */
export class OpenAiImageStream {
  private readonly picker: PartialImagePicker;
  private total: number;

  constructor(
    private readonly writer: SseWriter,
    private readonly options: OpenAiImageStreamOptions,
  ) {
    this.picker = new PartialImagePicker(options.partialImages);
    this.total = options.steps;
  }

  /** Translate one runner event. */
  onEvent(event: GenerationEvent): void {
    switch (event.event) {
      case 'queued':
        this.progress(0, null, event.position);
        break;
      case 'started':
        this.progress(0, null, null);
        break;
      case 'step':
        this.total = event.total;
        this.progress(event.step, event.eta_seconds, null);
        break;
      case 'preview': {
        const index = this.picker.take(event.step, this.total);
        if (index === null) break;
        this.writer.send(`${this.options.kind}.partial_image`, {
          type: `${this.options.kind}.partial_image`,
          b64_json: event.b64,
          partial_image_index: index,
          // Previews are JPEGs of the denoising state: no matting has run on them yet.
          background: 'opaque',
          output_format: FORMAT_OF_MIME[event.mime_type] ?? 'jpeg',
          ...this.quality(),
          size: this.options.size,
          created_at: this.createdAt(),
        });
        break;
      }
      default:
        break;
    }
  }

  /** One `image_generation.completed` per image, in batch order. */
  completed(images: readonly CompletedImage[], extra: { output_format: string; usage: ImageUsage; receipt: GenerationParams; task_id: string }): void {
    const size = `${extra.receipt.width}x${extra.receipt.height}`;
    for (const image of images) {
      this.writer.send(`${this.options.kind}.completed`, {
        type: `${this.options.kind}.completed`,
        ...image,
        background: extra.receipt.background === 'transparent' ? 'transparent' : 'opaque',
        output_format: extra.output_format,
        ...this.quality(),
        size,
        created_at: this.createdAt(),
        usage: extra.usage,
        receipt: extra.receipt,
        task_id: extra.task_id,
      });
    }
  }

  /** The `error` event (OpenAI's stream error shape). */
  failed(error: ApiError): void {
    this.writer.send('error', { type: 'error', error: error.toBody().error });
  }

  private progress(step: number, etaSeconds: number | null, queuePosition: number | null): void {
    this.writer.send(`${this.options.kind}.progress`, {
      type: `${this.options.kind}.progress`,
      step,
      total: this.total,
      eta_seconds: etaSeconds,
      queue_position: queuePosition,
    });
  }

  private quality(): { quality?: 'low' | 'medium' | 'high' } {
    return this.options.quality ? { quality: this.options.quality } : {};
  }

  private createdAt(): number {
    return Math.floor(this.options.now() / 1000);
  }
}
