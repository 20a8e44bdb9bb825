/**
 * Options of the tiny model generator and their defaults (the default is the `tiny-analytic`
 * model: int64 timestep, epsilon prediction, 4-channel UNet, float32, weights inside model.onnx,
 * hidden states exported, int32 input_ids).
 */
import type { TinyPredictionType } from './closed-form';

/** What to generate; every field optional (see TINY_DEFAULT_OPTIONS). */
export interface TinyModelOptions {
  /** Element type of the UNet's `timestep` input: int64 like most SD ONNX exports, or float (fractional t). */
  timestepType?: 'float32' | 'int64';
  /** scheduler_config.json prediction_type and what the UNet outputs. */
  predictionType?: TinyPredictionType;
  /** 9-channel UNet input (latents 4 + mask 1 + masked-image latents 4), as SD inpainting models. */
  inpainting?: boolean;
  /** Every float input, output and weight in float16 (timestep too when timestepType is 'float32'). */
  float16?: boolean;
  /** Text encoder and UNet weights in `model.onnx_data` beside `model.onnx` (ONNX external data). */
  externalData?: boolean;
  /** Text encoder also outputs hidden_states.0 … hidden_states.N (needed for clip_skip). */
  hiddenStates?: boolean;
  /** Element type of the text encoder's `input_ids` (diffusers' ONNX export uses int32, Optimum's int64). */
  inputIdsType?: 'int32' | 'int64';
}

/** TinyModelOptions with every field filled in. */
export type ResolvedTinyModelOptions = Required<TinyModelOptions>;

/** The defaults: the `tiny-analytic` model. */
export const TINY_DEFAULT_OPTIONS: Readonly<ResolvedTinyModelOptions> = {
  timestepType: 'int64',
  predictionType: 'epsilon',
  inpainting: false,
  float16: false,
  externalData: false,
  hiddenStates: true,
  inputIdsType: 'int32',
};

/**
 * Fills in defaults and checks the values.
 * @throws Error naming the option when a value is not one of the accepted ones.
 */
export function resolveTinyModelOptions(options: TinyModelOptions = {}): ResolvedTinyModelOptions {
  const resolved = { ...TINY_DEFAULT_OPTIONS, ...stripUndefined(options) };
  const check = (name: keyof TinyModelOptions, allowed: readonly unknown[]) => {
    if (!allowed.includes(resolved[name])) {
      throw new Error(`tiny model option ${name}: ${JSON.stringify(resolved[name])} is not one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`);
    }
  };
  check('timestepType', ['float32', 'int64']);
  check('predictionType', ['epsilon', 'v_prediction']);
  check('inputIdsType', ['int32', 'int64']);
  for (const flag of ['inpainting', 'float16', 'externalData', 'hiddenStates'] as const) check(flag, [true, false]);
  return resolved;
}

function stripUndefined(options: TinyModelOptions): TinyModelOptions {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as TinyModelOptions;
}
