import { open } from 'node:fs/promises';
import path from 'node:path';

/** How many numbered alternatives ("name-1.png" … ) to try before giving up. */
export const MAX_NAME_SUFFIX = 9999;

/**
 * Write `bytes` to `filePath` without ever overwriting an existing file: when the name is taken,
 * try "name-1.ext", "name-2.ext", … and return the path actually written. Each attempt opens with
 * O_CREAT|O_EXCL (flag "wx"), so two CLIs saving at once cannot clobber each other.
 *
 * @returns the path written, in the same form (relative or absolute) as `filePath`
 * @throws the file-system error for anything but "already exists" (e.g. ENOENT for a missing
 *   folder, EACCES), or an Error when all MAX_NAME_SUFFIX alternatives exist
 */
export async function writeUniqueFile(filePath: string, bytes: Uint8Array): Promise<string> {
  const extension = path.extname(filePath);
  const stem = filePath.slice(0, filePath.length - extension.length);
  for (let suffix = 0; suffix <= MAX_NAME_SUFFIX; suffix++) {
    const candidate = suffix === 0 ? filePath : `${stem}-${suffix}${extension}`;
    let handle;
    try {
      handle = await open(candidate, 'wx');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw error;
    }
    try {
      await handle.writeFile(bytes);
    } finally {
      await handle.close();
    }
    return candidate;
  }
  throw new Error(`${filePath} and ${MAX_NAME_SUFFIX} numbered alternatives already exist`);
}
