/**
 * A post-processing model that failed while running (its graph does not follow its kind's interface, or onnxruntime
 * failed on it): the operator's export is at fault, not the request. Rendered as 503 model_unavailable naming the
 * job field that chose the model (app.ts toServiceError).
 */
export class PostprocessModelError extends Error {
  constructor(
    /** The job field that chose the model (`hires_fix.upscale_model`, `background`, `matting_model`). */
    readonly param: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PostprocessModelError';
  }
}

/**
 * Run `work`; a failure that is not the signal's abort becomes a PostprocessModelError naming `param` and the model.
 * @throws PostprocessModelError, or the signal's reason when aborted.
 */
export async function asModelFailure<T>(param: string, what: string, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw new PostprocessModelError(param, `${param}: ${what} failed: ${(err as Error).message}`, { cause: err });
  }
}
