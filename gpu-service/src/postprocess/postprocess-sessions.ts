/**
 * One onnxruntime session per post-processing model file, opened on first use with the service's session
 * options (execution providers, threads) and kept for later jobs; reopened when the file changes (size or
 * mtime), released on close. Concurrent first uses share one open.
 *
 * These sessions are small next to a checkpoint's (tens to hundreds of MB) and are not counted in
 * MODEL_MEMORY_BUDGET.
 */
import { stat } from 'node:fs/promises';
import { OnnxModel, type SessionOptions } from '../onnx/session';
import type { PostprocessEntry } from './postprocess-catalog';

export class PostprocessSessions {
  private readonly open = new Map<string, { stamp: string; session: Promise<OnnxModel> }>();

  constructor(private readonly sessionOptions: SessionOptions) {}

  /**
   * The session of `entry`'s file.
   * @throws Error when onnxruntime cannot load the file (the next call tries again).
   */
  async session(entry: Pick<PostprocessEntry, 'path'>): Promise<OnnxModel> {
    const st = await stat(entry.path);
    const stamp = `${st.size}:${st.mtimeMs}`;
    const known = this.open.get(entry.path);
    if (known && known.stamp === stamp) return known.session;
    if (known) void known.session.then((s) => s.release(), () => undefined);
    const session = OnnxModel.open(entry.path, this.sessionOptions);
    const slot = { stamp, session };
    this.open.set(entry.path, slot);
    session.catch(() => {
      if (this.open.get(entry.path) === slot) this.open.delete(entry.path);
    });
    return session;
  }

  /** Paths with an open (or opening) session. */
  openPaths(): string[] {
    return [...this.open.keys()];
  }

  /** Release every session. */
  async close(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.allSettled(all.map(async (s) => (await s.session).release()));
  }
}
