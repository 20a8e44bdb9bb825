/**
 * The conversion cache: graphs built from a checkpoint, with their weights as ONNX external data, under
 * `MODELS_DIR/.cache/<key>/` where the key is a hash of everything the build depends on (checkpoint content,
 * sidecar, engine graph version, float type, attention kind). Identical files share an entry; entries survive
 * restarts. What is derived from an entry later, per host setting (graphs onnxruntime optimized for an execution
 * provider), is added to it as a folder of its own with derive().
 *
 * Atomicity: an entry is built in `.cache/.tmp-<key>-<pid>-<n>/` and renamed into place only when every file
 * is written; a failed build removes its temporary folder, so a half-built entry is never visible. Temporary
 * folders left by a process that died are removed by `sweep()`. Two builds of the same key in this process
 * share one promise; across processes the first rename wins and the other build's folder is discarded.
 */
import { access, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { OnnxGraph } from '../graphs/onnx-graph';

/** One network of an entry: its folder inside the entry and how to build its graph. */
export interface GraphToBuild {
  /** Folder inside the entry (`unet`, `text_encoder`, `vae_decoder`, …); the graph is `<folder>/model.onnx`. */
  folder: string;
  build: () => OnnxGraph | Promise<OnnxGraph>;
}

/** What an entry holds. */
export interface CacheEntryPlan {
  /** Hex key (the entry's folder name). */
  key: string;
  graphs: GraphToBuild[];
  /** Small files written beside the graphs (model_index.json, scheduler config, tokenizer files). */
  files: Array<{ path: string; contents: string | Uint8Array }>;
  /** Progress of a build: the graph being written and how many of its weights are written. */
  onProgress?: (p: { folder: string; graph: number; graphs: number; weights: number; totalWeights: number }) => void;
}

/** Result of ensure(). */
export interface CacheEntry {
  dir: string;
  /** True when this call built the entry; false when it was already there. */
  built: boolean;
  /** Seconds spent building (0 when cached). */
  seconds: number;
  /** Bytes of the entry's graphs and weights (0 when cached). */
  bytes: number;
}

/** Result of derive(). */
export interface DerivedFolder {
  dir: string;
  /** True when this call wrote the folder. */
  built: boolean;
  /** Seconds spent writing it (0 when it was there). */
  seconds: number;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let tmpCounter = 0;

export class ConversionCache {
  private readonly building = new Map<string, Promise<CacheEntry>>();
  private readonly deriving = new Map<string, Promise<DerivedFolder>>();

  /** @param root `MODELS_DIR/.cache`. */
  constructor(readonly root: string) {}

  /** Folder of the entry `key` (whether or not it exists). */
  dirOf(key: string): string {
    return join(this.root, key);
  }

  /** 'cached' when the entry exists, 'building' while this process builds it, else 'missing'. */
  async state(key: string): Promise<'cached' | 'building' | 'missing'> {
    if (this.building.has(key)) return 'building';
    return (await exists(join(this.dirOf(key), 'model_index.json'))) ? 'cached' : 'missing';
  }

  /**
   * The entry for `plan.key`, building it first when absent.
   * @throws the build's error; nothing of the failed build remains on disk.
   */
  ensure(plan: CacheEntryPlan): Promise<CacheEntry> {
    const running = this.building.get(plan.key);
    if (running) return running;
    const p = this.build(plan).finally(() => this.building.delete(plan.key));
    this.building.set(plan.key, p);
    return p;
  }

  private async build(plan: CacheEntryPlan): Promise<CacheEntry> {
    const dir = this.dirOf(plan.key);
    if (await exists(join(dir, 'model_index.json'))) return { dir, built: false, seconds: 0, bytes: 0 };
    await mkdir(this.root, { recursive: true });
    const tmp = join(this.root, `.tmp-${plan.key}-${process.pid}-${++tmpCounter}`);
    const started = performance.now();
    let bytes = 0;
    try {
      await mkdir(tmp, { recursive: true });
      for (const [i, g] of plan.graphs.entries()) {
        const graph = await g.build();
        const onWeight = (weights: number, totalWeights: number) => plan.onProgress?.({ folder: g.folder, graph: i + 1, graphs: plan.graphs.length, weights, totalWeights });
        bytes += (await graph.save(join(tmp, g.folder), 'model.onnx', { onWeight })).bytes;
      }
      // model_index.json last among the files: its presence marks a complete entry.
      const files = [...plan.files.filter((f) => f.path !== 'model_index.json'), ...plan.files.filter((f) => f.path === 'model_index.json')];
      for (const f of files) {
        const target = join(tmp, f.path);
        await mkdir(join(target, '..'), { recursive: true });
        await writeFile(target, f.contents);
      }
      try {
        await rename(tmp, dir);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // Another process finished the same entry first: keep theirs.
        if ((code === 'ENOTEMPTY' || code === 'EEXIST') && (await exists(join(dir, 'model_index.json')))) {
          await rm(tmp, { recursive: true, force: true });
          return { dir, built: false, seconds: 0, bytes: 0 };
        }
        throw err;
      }
      return { dir, built: true, seconds: (performance.now() - started) / 1000, bytes };
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * Add the folder `name` to the complete entry `key` unless it is there already: `write` fills a temporary
   * folder, which is renamed to `<entry>/<name>` when `write` returns. Atomic as ensure(): a failed write leaves
   * nothing, a crashed one only a temporary folder that sweep() removes, and when two processes derive the same
   * folder the first rename wins. Used for what is derived from an entry later, per host setting (graphs that
   * onnxruntime optimized for an execution provider).
   * @returns the folder, whether this call wrote it, and the seconds spent writing (0 when it was there).
   * @throws Error when the entry does not exist, or the write's error (after removing its temporary folder).
   */
  derive(key: string, name: string, write: (dir: string) => Promise<void>): Promise<DerivedFolder> {
    const id = `${key}/${name}`;
    const running = this.deriving.get(id);
    if (running) return running;
    const p = this.buildDerived(key, name, write).finally(() => this.deriving.delete(id));
    this.deriving.set(id, p);
    return p;
  }

  private async buildDerived(key: string, name: string, write: (dir: string) => Promise<void>): Promise<DerivedFolder> {
    const entry = this.dirOf(key);
    const dir = join(entry, name);
    if (!(await exists(join(entry, 'model_index.json')))) throw new Error(`conversion cache: no complete entry ${key} to derive ${name} from`);
    if (await exists(dir)) return { dir, built: false, seconds: 0 };
    const tmp = join(this.root, `.tmp-${key}-${process.pid}-${++tmpCounter}`);
    const started = performance.now();
    try {
      await mkdir(tmp, { recursive: true });
      await write(tmp);
      await mkdir(dirname(dir), { recursive: true });
      try {
        await rename(tmp, dir);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if ((code === 'ENOTEMPTY' || code === 'EEXIST') && (await exists(dir))) {
          await rm(tmp, { recursive: true, force: true });
          return { dir, built: false, seconds: 0 };
        }
        throw err;
      }
      return { dir, built: true, seconds: (performance.now() - started) / 1000 };
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
  }

  /** Remove temporary folders of builds whose process is gone (a crash mid-build). */
  async sweep(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch {
      return [];
    }
    const removed: string[] = [];
    for (const name of names) {
      const m = /^\.tmp-[0-9a-f]+-(\d+)-\d+$/.exec(name);
      if (!m) continue;
      const pid = Number(m[1]);
      if (pid === process.pid || alive(pid)) continue;
      await rm(join(this.root, name), { recursive: true, force: true });
      removed.push(name);
    }
    return removed;
  }

  /** Keys of the complete entries. */
  async entries(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch {
      return [];
    }
    const out: string[] = [];
    for (const n of names) if (/^[0-9a-f]{16,}$/.test(n) && (await exists(join(this.root, n, 'model_index.json')))) out.push(n);
    return out;
  }
}
