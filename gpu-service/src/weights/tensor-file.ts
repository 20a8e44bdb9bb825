/**
 * The common face of every weights file format the checkpoint engine reads (safetensors, GGUF): a list of
 * named tensors with their stored element type and shape, each read on demand and decoded to float32.
 * A reader never holds the whole file in memory: tensors are read one at a time with positioned reads.
 */

/** One stored tensor, as the file's header describes it (validated against the file before use). */
export interface TensorEntry {
  /** The tensor's key in the file (e.g. `model.diffusion_model.input_blocks.0.0.weight`). */
  key: string;
  /** Stored element type in the format's own spelling (`F32`, `F16`, `BF16`, `I64`, `Q4_0`, …). */
  dtype: string;
  /** Dimensions in PyTorch order (outermost first), as the tensor's module expects them. */
  shape: number[];
  /** Absolute byte offset of the tensor's data in the file. */
  offset: number;
  /** Byte length of the stored data. */
  byteLength: number;
}

/** A weights file opened for reading. */
export interface TensorFile {
  /** Absolute path of the file. */
  readonly path: string;
  /** Format name for listings and errors (`safetensors`, `gguf`). */
  readonly format: string;
  /** Size of the file in bytes. */
  readonly sizeBytes: number;
  /** Free-form string metadata from the file's header (safetensors `__metadata__`, GGUF key/values). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Every tensor, in header order. */
  readonly entries: ReadonlyMap<string, TensorEntry>;
  /**
   * Read one tensor and decode it to float32 (integers are converted exactly where they fit).
   * @returns float32 values, row-major in the entry's shape.
   * @throws Error naming the file and key when the key is unknown, the dtype is not a float or integer type
   *         the reader decodes, or the read comes back short (the file changed or is truncated).
   */
  readFloat32(key: string): Promise<Float32Array>;
  /** Release the file handle. */
  close(): Promise<void>;
}

/** Number of elements of a shape (1 for a scalar). */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Error for a weights file that cannot be used; the message says what is wrong and where. */
export class WeightsFileError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
    this.name = 'WeightsFileError';
  }
}
