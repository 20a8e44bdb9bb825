/**
 * Flat numeric tensors for the sampling maths.
 *
 * Latents travel through samplers as one flat, row-major array holding a whole batch
 * (shape [B, C, H, W], usually float32 from onnxruntime; float64 in the maths tests).
 * Samplers are element-wise, so they never need the shape; the pipeline keeps it.
 */
export type Tensor = Float32Array | Float64Array;

/** A tensor of the same kind (float32/float64) and length as `like`, filled with zeros. */
export function zerosLike(like: Tensor): Tensor {
  return like instanceof Float64Array ? new Float64Array(like.length) : new Float32Array(like.length);
}
