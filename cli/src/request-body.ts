import type { ImageGenerationRequestInput } from '@image-api/shared/api/openai-images';
import type { DrawOptions } from './draw-options';

/**
 * The JSON body `draw` sends to POST /v1/images/generations: the OpenAI fields plus the GPUStack
 * "advanced" fields (README "Public API"), typed by the shared request schema. Fields the user gave
 * no flag for are left out, so the server's documented defaults apply (size omitted = the
 * model's native size).
 */
export type DrawRequestBody = ImageGenerationRequestInput;

/**
 * Build the request body for one image: n = 1, response_format b64_json, the chosen
 * output_format, and `stream` (true unless the server already refused streaming, see
 * generateImages' fallback). A streamed request asks for `preview: "none"`: the CLI shows a
 * progress bar, not pictures, so previews would only cost server time. Pure.
 */
export function buildRequestBody(options: DrawOptions, stream = true): DrawRequestBody {
  const body: DrawRequestBody = {
    prompt: options.prompt,
    n: 1,
    response_format: 'b64_json',
    output_format: options.format,
    stream,
    sample_method: options.sampler,
  };
  if (stream) body.preview = 'none';
  if (options.model !== null) body.model = options.model;
  if (options.size !== null) body.size = options.size;
  if (options.scheduler !== null) body.schedule_method = options.scheduler;
  if (options.steps !== null) body.sampling_steps = options.steps;
  if (options.cfgScale !== null) body.cfg_scale = options.cfgScale;
  if (options.seed !== null) body.seed = options.seed;
  if (options.negativePrompt !== null && options.negativePrompt !== '') body.negative_prompt = options.negativePrompt;
  if (options.loras.length > 0) body.loras = options.loras.map((l) => ({ model_name: l.model_name, strength: l.strength }));
  if (options.vae !== null) body.vae = options.vae;
  if (options.background !== null) body.background = options.background;
  return body;
}
