/**
 * Textual-inversion embedding files (safetensors): the vectors a prompt's embedding name stands for, per text
 * encoder. Formats:
 * - AUTOMATIC1111: one tensor `emb_params` [n, H] (or `string_to_param.*` from converted .pt files);
 * - diffusers `load_textual_inversion`: one tensor named by its token (`<cat-toy>`: [n, H] or [H]);
 * - SDXL: `clip_l` [n, 768] and `clip_g` [n, 1280], one per text encoder.
 * The name users write in prompts is the file's stem, as in AUTOMATIC1111.
 */
import type { TensorFile } from '../weights/tensor-file';

/** An embedding: its vectors for one text encoder ('any' when the file does not say which) or per encoder. */
export interface EmbeddingFile {
  /** Encoder key (`any`, `clip_l`, `clip_g`) → float32 [n, H], row-major. */
  vectors: Map<'any' | 'clip_l' | 'clip_g', { data: Float32Array; count: number; width: number }>;
}

/** A file that is not a textual-inversion embedding, or one that does not fit a model. */
export class EmbeddingFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EmbeddingFormatError';
  }
}

/**
 * Read an embedding file's vectors.
 * @throws EmbeddingFormatError when the file holds no embedding tensor, or its tensors are not 1-D / 2-D.
 */
export async function readEmbeddingFile(file: TensorFile): Promise<EmbeddingFile> {
  const keys = [...file.entries.keys()];
  const vectors: EmbeddingFile['vectors'] = new Map();
  const take = async (key: string, role: 'any' | 'clip_l' | 'clip_g') => {
    const shape = file.entries.get(key)!.shape;
    if (shape.length !== 1 && shape.length !== 2) throw new EmbeddingFormatError(`${key} has shape [${shape.join(', ')}]; an embedding is [vectors, width]`);
    const [count, width] = shape.length === 1 ? [1, shape[0]] : shape;
    vectors.set(role, { data: await file.readFloat32(key), count, width });
  };
  if (keys.includes('clip_l') || keys.includes('clip_g')) {
    if (keys.includes('clip_l')) await take('clip_l', 'clip_l');
    if (keys.includes('clip_g')) await take('clip_g', 'clip_g');
  } else if (keys.includes('emb_params')) {
    await take('emb_params', 'any');
  } else if (keys.filter((k) => k.startsWith('string_to_param')).length === 1) {
    await take(keys.find((k) => k.startsWith('string_to_param'))!, 'any');
  } else if (keys.length === 1) {
    await take(keys[0], 'any');
  } else {
    throw new EmbeddingFormatError(`not a textual-inversion embedding: expected emb_params, string_to_param, clip_l/clip_g or a single token tensor, found ${keys.slice(0, 4).join(', ')}`);
  }
  return { vectors };
}

/**
 * The vectors of an embedding for a text encoder of `role` and width `hidden`.
 * @throws EmbeddingFormatError when the file has no vectors of that width (an embedding for another model).
 */
export function vectorsFor(e: EmbeddingFile, role: 'clip_l' | 'clip_g' | 'clip_h', hidden: number, name: string): { data: Float32Array; count: number } {
  const v = e.vectors.get(role === 'clip_h' ? 'any' : role) ?? e.vectors.get('any');
  if (!v || v.width !== hidden) {
    const widths = [...e.vectors.values()].map((x) => x.width).join('/');
    throw new EmbeddingFormatError(`embedding "${name}" has ${widths}-wide vectors; this model's text encoder takes ${hidden}: it is for another architecture`);
  }
  return v;
}
