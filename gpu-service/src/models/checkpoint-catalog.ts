/**
 * The checkpoint files and folders under `MODELS_DIR/checkpoints/`, each a model whose id is its path relative
 * to that folder, '/'-separated, exactly as AUTOMATIC1111 / ComfyUI users name them
 * (`sd1.5/dreamshaper-v8/dreamshaper_8.safetensors`):
 * - `*.safetensors` / `*.sft` single files and `*.gguf` files;
 * - diffusers folders (`model_index.json` with safetensors weights; the folder's relative path is the id and
 *   nothing inside it is listed separately);
 * - pickle files (`.ckpt`, `.pt`, `.pth`, `.bin`, `.pkl`), listed so a user sees why they do not load.
 * Sidecars (`<name>.json`, `.yaml`) and other files are not models. Hidden files and folders are skipped,
 * symbolic links are not followed (a link could point anywhere on the host).
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PICKLE_EXTENSIONS } from '../checkpoints/open-checkpoint';

/** The folder under MODELS_DIR that holds checkpoints. */
export const CHECKPOINTS_FOLDER = 'checkpoints';

/** One checkpoint found on disk. */
export interface CheckpointFile {
  /** Model id: the path relative to MODELS_DIR/checkpoints, '/'-separated. */
  id: string;
  /** Absolute path of the file or folder. */
  path: string;
  format: 'safetensors' | 'gguf' | 'diffusers' | 'pickle';
  /** Bytes on disk (a folder: its weight files). */
  sizeBytes: number;
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) total += await folderBytes(p);
    else if (e.isFile() && /\.(safetensors|bin|json)$/.test(e.name)) total += (await stat(p)).size;
  }
  return total;
}

/**
 * Every checkpoint under `<modelsDir>/checkpoints`, sorted by id.
 * @returns [] when the folder does not exist.
 */
export async function listCheckpointFiles(modelsDir: string): Promise<CheckpointFile[]> {
  const root = join(modelsDir, CHECKPOINTS_FOLDER);
  const out: CheckpointFile[] = [];
  async function walk(rel: string): Promise<void> {
    let entries;
    try {
      entries = await readdir(join(root, rel), { withFileTypes: true });
    } catch {
      return;
    }
    const names = new Set(entries.map((e) => e.name));
    if (rel && names.has('model_index.json')) {
      out.push({ id: rel, path: join(root, rel), format: 'diffusers', sizeBytes: await folderBytes(join(root, rel)) });
      return;
    }
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      const p = join(root, r);
      if (e.isDirectory()) {
        await walk(r);
        continue;
      }
      if (!e.isFile()) continue;
      const lower = e.name.toLowerCase();
      const format = lower.endsWith('.safetensors') || lower.endsWith('.sft') ? 'safetensors' : lower.endsWith('.gguf') ? 'gguf' : PICKLE_EXTENSIONS.some((x) => lower.endsWith(x)) ? 'pickle' : undefined;
      if (format) out.push({ id: r, path: p, format, sizeBytes: (await stat(p)).size });
    }
  }
  await walk('');
  return out.sort((a, b) => a.id.localeCompare(b.id));
}
