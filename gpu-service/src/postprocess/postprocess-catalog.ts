/**
 * The post-processing models of MODELS_DIR: ONNX files in one folder per kind (README, "Post-processing"):
 * - `matting/`: background removal (RMBG / BiRefNet-style exports), kind `matting`;
 * - `facerestore/`: a face detector and a GFPGAN / CodeFormer-style restorer, kind `facerestore`;
 * - `upscale_models/`: ESRGAN-family image-to-image upscalers at any integer scale, kind `upscaler`
 *   (ComfyUI's folder name).
 * Each `*.onnx` file is one model whose id is its path relative to the kind's folder without `.onnx`,
 * '/'-separated (`RealESRGAN_x4plus`, `anime/4x-AnimeSharp`), as A1111 and ComfyUI users name them. An optional
 * sidecar `<name>.json` beside it describes an export whose interface differs from its kind's default
 * (postprocess-interfaces.ts); a sidecar that does not parse makes the model unusable, with the reason.
 * External data files (`<name>.onnx_data`, `<name>.onnx.data`) are counted in the model's size. Hidden files are
 * skipped, symbolic links are not followed.
 *
 * Each file's SHA-256 is computed once per file version (size and mtime) and goes into receipts and PNG
 * metadata as the stage's `hash`.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256File } from '../checkpoints/content-hash';
import { parseSidecar, type PostprocessKind, type PostprocessSidecar } from './postprocess-interfaces';

/** The post-processing kinds and their folders under MODELS_DIR. */
export const POSTPROCESS_FOLDERS: Readonly<Record<PostprocessKind, string>> = { matting: 'matting', facerestore: 'facerestore', upscaler: 'upscale_models' };

/** Every post-processing kind, in listing order. */
export const POSTPROCESS_KINDS: readonly PostprocessKind[] = ['matting', 'facerestore', 'upscaler'];

/** One post-processing model file. */
export interface PostprocessEntry {
  id: string;
  kind: PostprocessKind;
  /** Absolute path of the `.onnx` file. */
  path: string;
  /** Bytes of the `.onnx` file and its external data. */
  sizeBytes: number;
  /** The sidecar's settings (empty object: the kind's default interface). */
  sidecar: PostprocessSidecar;
  /** Why the model cannot be used (an unreadable sidecar), when it cannot. */
  error?: string;
}

const EXTERNAL_DATA_SUFFIXES = ['.onnx_data', '.onnx.data', '.onnx_data.bin'];

/** The post-processing models of one MODELS_DIR (see the module comment). */
export class PostprocessCatalog {
  private readonly memo = new Map<string, { stamp: string; sidecar: PostprocessSidecar; error?: string }>();
  private readonly hashes = new Map<string, { stamp: string; sha256: Promise<string> }>();

  constructor(readonly modelsDir: string) {}

  /** Every model of every kind (or of `kind`), sorted by kind (POSTPROCESS_KINDS order) and id. */
  async list(kind?: PostprocessKind): Promise<PostprocessEntry[]> {
    const out: PostprocessEntry[] = [];
    for (const k of kind ? [kind] : POSTPROCESS_KINDS) {
      const root = join(this.modelsDir, POSTPROCESS_FOLDERS[k]);
      const walk = async (rel: string): Promise<void> => {
        let entries;
        try {
          entries = await readdir(join(root, rel), { withFileTypes: true });
        } catch {
          return;
        }
        const names = new Set(entries.map((e) => e.name));
        for (const e of entries) {
          if (e.name.startsWith('.')) continue;
          const r = rel ? `${rel}/${e.name}` : e.name;
          if (e.isDirectory()) {
            await walk(r);
            continue;
          }
          if (!e.isFile() || !e.name.toLowerCase().endsWith('.onnx')) continue;
          const path = join(root, r);
          const base = e.name.slice(0, -'.onnx'.length);
          const st = await stat(path);
          let sizeBytes = st.size;
          for (const suffix of EXTERNAL_DATA_SUFFIXES) {
            if (names.has(base + suffix)) sizeBytes += (await stat(join(root, rel, base + suffix))).size;
          }
          const sidecarPath = names.has(`${base}.json`) ? join(root, rel, `${base}.json`) : undefined;
          const stamp = `${st.size}:${st.mtimeMs}:${sidecarPath ? (await stat(sidecarPath)).mtimeMs : '-'}`;
          let m = this.memo.get(path);
          if (!m || m.stamp !== stamp) {
            m = { stamp, ...(await readSidecar(k, sidecarPath)) };
            this.memo.set(path, m);
          }
          out.push({ id: r.slice(0, -'.onnx'.length), kind: k, path, sizeBytes, sidecar: m.sidecar, ...(m.error ? { error: m.error } : {}) });
        }
      };
      await walk('');
    }
    return out.sort((a, b) => POSTPROCESS_KINDS.indexOf(a.kind) - POSTPROCESS_KINDS.indexOf(b.kind) || a.id.localeCompare(b.id));
  }

  /** The model of `kind` named `id`, or undefined (ids are matched against what is on disk, never joined unchecked). */
  async find(kind: PostprocessKind, id: string): Promise<PostprocessEntry | undefined> {
    return (await this.list(kind)).find((m) => m.id === id);
  }

  /**
   * SHA-256 (hex) of a model's `.onnx` file, read once per file version (size and mtime).
   * @throws Error when the file cannot be read.
   */
  async sha256(entry: Pick<PostprocessEntry, 'path'>): Promise<string> {
    const st = await stat(entry.path);
    const stamp = `${st.size}:${st.mtimeMs}`;
    let h = this.hashes.get(entry.path);
    if (!h || h.stamp !== stamp) {
      h = { stamp, sha256: sha256File(entry.path) };
      this.hashes.set(entry.path, h);
      h.sha256.catch(() => this.hashes.delete(entry.path));
    }
    return h.sha256;
  }
}

/** The sidecar of a model, or the reason it cannot be used. Never throws. */
async function readSidecar(kind: PostprocessKind, path: string | undefined): Promise<{ sidecar: PostprocessSidecar; error?: string }> {
  if (!path) return { sidecar: {} };
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    return { sidecar: {}, error: `its sidecar ${path} is not valid JSON: ${(err as Error).message}` };
  }
  try {
    return { sidecar: parseSidecar(kind, raw) };
  } catch (err) {
    return { sidecar: {}, error: `its sidecar ${path}: ${(err as Error).message}` };
  }
}
