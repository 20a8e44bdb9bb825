/**
 * Named variants of the tiny model: folder name under MODELS_DIR → generator options. Each
 * exercises one real-model format path of the pipeline (issues 3 and 4).
 */
import type { TinyModelOptions } from './options';

/** Folder name of the default model (the GPU service's embedded default). */
export const TINY_DEFAULT_VARIANT = 'tiny-analytic';

/** Variant folder names → options (anything not given is TINY_DEFAULT_OPTIONS). */
export const TINY_VARIANTS: Readonly<Record<string, Readonly<TinyModelOptions>>> = {
  /** int64 timestep, epsilon, float32, int32 input_ids, hidden states. */
  'tiny-analytic': {},
  /** v_prediction (like SD 2.x 768 models). */
  'tiny-analytic-v': { predictionType: 'v_prediction' },
  /** float timestep input (fractional t; exact through the k-diffusion wrapper). */
  'tiny-analytic-float-t': { timestepType: 'float32' },
  /** 9-channel inpainting UNet. */
  'tiny-analytic-inpaint': { inpainting: true },
  /** every float tensor and input/output in float16. */
  'tiny-analytic-fp16': { float16: true },
  /** weights in model.onnx_data (external data); also int64 input_ids, as Optimum exports. */
  'tiny-analytic-external': { externalData: true, inputIdsType: 'int64' },
  /** text encoder without hidden_states.* outputs (clip_skip must be refused with a 400). */
  'tiny-analytic-no-hidden-states': { hiddenStates: false },
};
