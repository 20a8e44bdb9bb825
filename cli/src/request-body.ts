import type { DrawOptions } from './draw-options';
import type { ImageFormat } from './image-format';

/**
 * The JSON body `draw` sends to POST /v1/images/generations: the OpenAI fields plus the GPUStack
 * "advanced" fields (api-styles.md §1). Only the fields the CLI sets are listed; optional ones
 * are left out when the user did not give the flag, so the server's documented defaults apply.
 */
export interface DrawRequestBody {
  prompt: string;
  model?: string;
  n: 1;
  /** "WxH"; omitted = the model's native size. */
  size?: string;
  response_format: 'b64_json';
  output_format: ImageFormat;
  stream: boolean;
  /** Preview images cost server time and the CLI shows none, so it asks for none. */
  preview?: 'none';
  sample_method: string;
  schedule_method?: string;
  sampling_steps?: number;
  cfg_scale?: number;
  seed?: number;
  negative_prompt?: string;
}

/**
 * Build the request body for one image. `stream` is true unless the server already refused
 * streaming (see generateImages' fallback). Pure.
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
  return body;
}
