import { fitCustomMetadata, storeImagesAtomically, type ImageBucket, type StoredImage } from '../storage/r2-images';
import type { TaskRow } from '../tasks/task-types';
import type { InputImage } from './resolve-image-input';

/** What an input image was used as. */
export type InputRole = 'image' | 'mask';

/** One input image of a task and its role. */
export interface TaskInput {
  image: InputImage;
  role: InputRole;
}

/** Parts of an input's R2 object key. */
export interface InputKeyParts {
  tenant: string;
  taskId: string;
  /** Position among the task's inputs (0-based: the image, then the mask). */
  index: number;
  extension: string;
  /** When the task was created; the UTC date is used. */
  createdAt: Date;
}

/**
 * `<tenant>/<yyyy>/<mm>/<dd>/<task>/input-<n>.<ext>`: beside the task's outputs (`<i>.<ext>`,
 * storage/r2-images.ts), so a task's folder holds what went in and what came out.
 */
export function inputObjectKey(parts: InputKeyParts): string {
  const d = parts.createdAt;
  const yyyy = String(d.getUTCFullYear());
  const mm = String(d.getUTCMonth() + 1).padStart(2, '0');
  const dd = String(d.getUTCDate()).padStart(2, '0');
  return `${parts.tenant}/${yyyy}/${mm}/${dd}/${parts.taskId}/input-${parts.index}.${parts.extension}`;
}

/** Inputs of {@link inputStoredImages}. */
export interface InputStoredImagesOptions {
  tenant: string;
  taskId: string;
  keyName: string;
  createdAt: Date;
  inputs: readonly TaskInput[];
}

/**
 * The R2 objects for a task's input images (issue 6 part 7: uploaded inputs are stored too), with
 * their role, source, size and origin URL as custom metadata. Store them with
 * storeImagesAtomically.
 */
export function inputStoredImages(options: InputStoredImagesOptions): StoredImage[] {
  return options.inputs.map(({ image, role }, index) => ({
    key: inputObjectKey({ tenant: options.tenant, taskId: options.taskId, index, extension: image.extension, createdAt: options.createdAt }),
    bytes: image.bytes,
    contentType: image.mimeType,
    customMetadata: fitCustomMetadata({
      task_id: options.taskId,
      tenant: options.tenant,
      key_name: options.keyName,
      role,
      source: image.source,
      // Long or odd URLs are cut by fitCustomMetadata's byte budget only for prompt fields; keep it bounded here.
      url: image.url?.slice(0, 512),
      filename: image.filename?.slice(0, 128),
      width: image.width,
      height: image.height,
      created_at: options.createdAt.toISOString(),
    }),
  }));
}

/**
 * Store a task's input images under its folder (`<tenant>/<date of the task>/<task>/input-<n>.<ext>`),
 * all or nothing. Call it after the task row exists and before the run; the inputs stay with the
 * task whatever its outcome.
 * @throws ApiError 500 `storage_failed`.
 */
export async function storeTaskInputs(bucket: ImageBucket, task: TaskRow, inputs: readonly TaskInput[]): Promise<void> {
  if (inputs.length === 0) return;
  await storeImagesAtomically(
    bucket,
    inputStoredImages({ tenant: task.tenant, taskId: task.id, keyName: task.key_name, createdAt: new Date(task.created_at), inputs }),
  );
}
