/**
 * clip_skip's LayerNorm: diffusers (`StableDiffusionPipeline.encode_prompt`) and AUTOMATIC1111 take the
 * hidden state `clip_skip` layers from the end and pass it through the text model's final LayerNorm
 * (CLIP's `text_model.final_layer_norm`, eps 1e-5) before using it as conditioning. ONNX exports only output
 * the raw hidden states, so the norm's weight and bias are read from the export's initializers.
 */
import { readInitializers } from '../onnx/initializers';

export interface LayerNormParams {
  /** float32 [H]. */
  weight: Float32Array;
  /** float32 [H]. */
  bias: Float32Array;
  eps: number;
}

/**
 * The final LayerNorm of a CLIP text encoder export, or undefined when its initializers are not present
 * (then the raw hidden state is used, as for exports whose last hidden state has no norm).
 */
export async function readFinalLayerNorm(textEncoderOnnx: string, hiddenSize: number): Promise<LayerNormParams | undefined> {
  const found = await readInitializers(textEncoderOnnx, ['final_layer_norm.weight', 'final_layer_norm.bias']);
  if (!found || found[0].length !== hiddenSize || found[1].length !== hiddenSize) return undefined;
  return { weight: found[0], bias: found[1], eps: 1e-5 };
}

/** LayerNorm over the last axis: float32 [tokens, H] → new array (mean/variance in float64). */
export function layerNorm(x: Float32Array, hiddenSize: number, p: LayerNormParams): Float32Array {
  const out = new Float32Array(x.length);
  for (let t = 0; t < x.length / hiddenSize; t++) {
    const o = t * hiddenSize;
    let mean = 0;
    for (let i = 0; i < hiddenSize; i++) mean += x[o + i];
    mean /= hiddenSize;
    let v = 0;
    for (let i = 0; i < hiddenSize; i++) v += (x[o + i] - mean) ** 2;
    const inv = 1 / Math.sqrt(v / hiddenSize + p.eps);
    for (let i = 0; i < hiddenSize; i++) out[o + i] = (x[o + i] - mean) * inv * p.weight[i] + p.bias[i];
  }
  return out;
}
