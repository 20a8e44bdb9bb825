/**
 * SHA-256 of model files, remembered by (path, size, mtime) in `<cache>/hashes.json` so a multi-gigabyte
 * checkpoint is read for hashing once, not on every start (AUTOMATIC1111 keeps the same kind of cache.json).
 * The hash names the conversion cache entry, so identical files under different names share one entry, and it
 * is the `model_hash` of the reproducibility receipt.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

interface Remembered {
  size: number;
  mtimeMs: number;
  sha256: string;
}

/** Streaming SHA-256 of one file (hex). */
export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve(hash.digest('hex')))
      .on('error', reject);
  });
}

export class ContentHashes {
  private memo?: Promise<Record<string, Remembered>>;
  private readonly pending = new Map<string, Promise<string>>();
  private writes: Promise<void> = Promise.resolve();

  /** @param cacheDir the conversion cache's root (`MODELS_DIR/.cache`). */
  constructor(private readonly cacheDir: string) {}

  private get file(): string {
    return join(this.cacheDir, 'hashes.json');
  }

  private load(): Promise<Record<string, Remembered>> {
    this.memo ??= readFile(this.file, 'utf8').then(
      (s) => JSON.parse(s) as Record<string, Remembered>,
      () => ({}),
    );
    return this.memo;
  }

  /** The remembered hash of `path` when the file is unchanged since it was hashed, without reading it. */
  async known(path: string): Promise<string | undefined> {
    const [memo, st] = await Promise.all([this.load(), stat(path)]);
    const r = memo[path];
    return r && r.size === st.size && r.mtimeMs === st.mtimeMs ? r.sha256 : undefined;
  }

  /** SHA-256 of `path` (hex), hashing the file only when it changed since last time. */
  async of(path: string): Promise<string> {
    const known = await this.known(path);
    if (known) return known;
    let p = this.pending.get(path);
    if (!p) {
      p = (async () => {
        const before = await stat(path);
        const sha256 = await sha256File(path);
        const memo = await this.load();
        memo[path] = { size: before.size, mtimeMs: before.mtimeMs, sha256 };
        await this.save(memo);
        return sha256;
      })().finally(() => this.pending.delete(path));
      this.pending.set(path, p);
    }
    return p;
  }

  /** Write hashes.json atomically (temp file + rename), one write at a time. */
  private save(memo: Record<string, Remembered>): Promise<void> {
    this.writes = this.writes.then(async () => {
      await mkdir(dirname(this.file), { recursive: true });
      const tmp = `${this.file}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify(memo, null, 1));
      await rename(tmp, this.file);
    });
    return this.writes;
  }
}
