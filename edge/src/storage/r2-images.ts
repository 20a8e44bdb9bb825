import { storageFailed } from '../lib/api-error';

/** File extension per output format. */
export const FORMAT_EXTENSIONS = { png: 'png', jpeg: 'jpg', webp: 'webp' } as const;

/** Parts of an image's R2 object key. */
export interface ImageKeyParts {
  tenant: string;
  taskId: string;
  /** Index of the image within its batch (0-based). */
  index: number;
  extension: string;
  /** When the task was created; the UTC date is used. */
  createdAt: Date;
}

/** `<tenant>/<yyyy>/<mm>/<dd>/<task>/<i>.<ext>` with the UTC date (docs/architecture.md, "Edge"). */
export function imageObjectKey(parts: ImageKeyParts): string {
  const d = parts.createdAt;
  const yyyy = String(d.getUTCFullYear());
  const mm = String(d.getUTCMonth() + 1).padStart(2, '0');
  const dd = String(d.getUTCDate()).padStart(2, '0');
  return `${parts.tenant}/${yyyy}/${mm}/${dd}/${parts.taskId}/${parts.index}.${parts.extension}`;
}

/** One object to store. */
export interface StoredImage {
  key: string;
  bytes: Uint8Array;
  contentType: string;
  /** String-valued metadata kept with the object (R2 custom metadata). */
  customMetadata: Record<string, string>;
}

/** The R2 calls storeImagesAtomically needs (an R2Bucket fits; tests pass a failing wrapper). */
export type ImageBucket = Pick<R2Bucket, 'put' | 'delete'>;

/**
 * Store every image of one request, or none: if any put fails, every key of the request is
 * deleted again (including ones whose put may have landed) before the error is thrown, so a
 * failed request never leaves orphaned objects.
 * @throws ApiError 500 `storage_failed` (the cause is logged, not shown to the client).
 */
export async function storeImagesAtomically(bucket: ImageBucket, images: readonly StoredImage[]): Promise<void> {
  const results = await Promise.allSettled(
    images.map((image) =>
      bucket.put(image.key, image.bytes, {
        httpMetadata: { contentType: image.contentType },
        customMetadata: image.customMetadata,
      }),
    ),
  );
  const failure = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (!failure) return;
  console.error('storing images failed; removing the request\'s objects', failure.reason);
  try {
    await bucket.delete(images.map((image) => image.key));
  } catch (cleanupError) {
    // Still answer the client; the log names the keys so an operator can remove them.
    console.error('cleanup after a failed store also failed', images.map((image) => image.key), cleanupError);
  }
  throw storageFailed('Storing the generated images failed; nothing was kept. Please retry.');
}

/** Largest total size of custom metadata we write (R2 allows 2 KiB per object). */
export const MAX_CUSTOM_METADATA_BYTES = 2048;

/**
 * Fit generation parameters into R2 custom metadata: values are strings, and long free-text values
 * (prompt, negative_prompt, user) are shortened so the whole set stays under
 * MAX_CUSTOM_METADATA_BYTES; `truncated` lists the fields that were cut.
 */
export function fitCustomMetadata(fields: Record<string, string | number | undefined>): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(fields)) {
    if (value !== undefined) metadata[name] = String(value);
  }
  const encoder = new TextEncoder();
  const size = () => Object.entries(metadata).reduce((sum, [k, v]) => sum + encoder.encode(k).length + encoder.encode(v).length, 0);
  const truncated: string[] = [];
  for (const name of ['negative_prompt', 'user', 'prompt']) {
    const overflow = size() + 32 - MAX_CUSTOM_METADATA_BYTES;
    if (overflow <= 0) break;
    const value = metadata[name];
    if (value === undefined || value.length === 0) continue;
    // Cut by characters until the byte size fits (multi-byte text: loop shrinks further if needed).
    let cut = value.slice(0, Math.max(0, value.length - overflow));
    while (cut.length > 0 && encoder.encode(cut).length > encoder.encode(value).length - overflow) cut = cut.slice(0, -1);
    metadata[name] = cut;
    truncated.push(name);
  }
  if (truncated.length > 0) metadata.truncated = truncated.join(',');
  return metadata;
}
