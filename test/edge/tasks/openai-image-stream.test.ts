/**
 * The background reported by OpenAI stream events: partial images are previews of the denoising state, taken
 * before matting, so they say "opaque" even on a transparent request; the completed event carries the real
 * background of the finished image (from the receipt), "transparent" or "opaque".
 */
import { describe, expect, it } from 'vitest';
import type { GenerationParams } from '@image-api/shared/generation-job';
import { OpenAiImageStream } from '../../../edge/src/tasks/openai-image-stream';
import type { SseWriter } from '../../../edge/src/tasks/sse-writer';

function run(background: 'transparent' | 'opaque' | undefined): Array<{ event: string; data: Record<string, unknown> }> {
  const sent: Array<{ event: string; data: Record<string, unknown> }> = [];
  const writer = { send: (event: string, data: Record<string, unknown>) => sent.push({ event, data }) } as unknown as SseWriter;
  const stream = new OpenAiImageStream(writer, { kind: 'image_generation', outputFormat: 'png', size: '64x64', partialImages: null, steps: 4, now: () => 1_700_000_000_000 });
  stream.onEvent({ id: 'j', event: 'step', step: 2, total: 4, eta_seconds: null });
  stream.onEvent({ id: 'j', event: 'preview', step: 2, mime_type: 'image/jpeg', b64: 'AAAA' });
  const receipt = { width: 64, height: 64, ...(background ? { background } : {}) } as unknown as GenerationParams;
  stream.completed([{ b64_json: 'BBBB', seed: 1 }], { output_format: 'png', usage: { total_tokens: 0 } as never, receipt, task_id: 't' });
  return sent;
}

describe('OpenAiImageStream background field', () => {
  it('transparent request: the partial image says opaque (taken before matting), the completed image transparent', () => {
    const sent = run('transparent');
    expect(sent.map((e) => e.event)).toEqual(['image_generation.progress', 'image_generation.partial_image', 'image_generation.completed']);
    expect(sent[1].data).toMatchObject({ background: 'opaque', output_format: 'jpeg' });
    expect(sent[2].data).toMatchObject({ background: 'transparent', output_format: 'png', b64_json: 'BBBB' });
  });

  it('opaque or unspecified request: every event says opaque', () => {
    for (const background of ['opaque', undefined] as const) {
      const sent = run(background);
      expect(sent[1].data.background).toBe('opaque');
      expect(sent[2].data.background).toBe('opaque');
    }
  });
});
