/**
 * The add-ons in MODELS_DIR: LoRAs in `loras/`, textual-inversion embeddings in `embeddings/`, standalone VAEs in
 * `vae/`. Each file is an add-on whose id is its path relative to that folder without the extension, '/'-separated
 * (`styles/pixel-art`), as AUTOMATIC1111 and ComfyUI users name them. Safetensors files are read; pickle files
 * (`.pt`, `.ckpt`, `.bin`, `.pth`) are listed so the user sees why they cannot be used. Symbolic links are not
 * followed; hidden files are skipped.
 *
 * Each add-on is described once per file version (size and mtime): the base architecture it fits, read from its
 * tensors (and kohya's `ss_base_model_version` where present), or the reason it cannot be used.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PICKLE_EXTENSIONS, pickleRefusal } from '../checkpoints/open-checkpoint';
import { openSafetensors } from '../weights/safetensors';
import type { TensorFile } from '../weights/tensor-file';
import { parseLoraFile } from './lora-file';
import { readEmbeddingFile } from './embedding-file';

/** The add-on kinds and their folders. */
export const ADDON_FOLDERS = { lora: 'loras', textualinversion: 'embeddings', vae: 'vae' } as const;
export type AddonKind = keyof typeof ADDON_FOLDERS;

/** One add-on file. */
export interface AddonEntry {
  id: string;
  kind: AddonKind;
  path: string;
  sizeBytes: number;
  /** The base architectures it fits ("Stable Diffusion 1.x", …), when it can be told. */
  baseArchitecture?: string;
  /** Why it cannot be used. */
  error?: string;
}

const ARCH = { sd1: 'Stable Diffusion 1.x', sd2: 'Stable Diffusion 2.x', sdxl: 'Stable Diffusion XL', flow16: 'FLUX.1 / Stable Diffusion 3.x' } as const;

/** The base architecture of a LoRA: kohya's metadata, else the text-encoder or cross-attention widths it patches. */
function loraArchitecture(file: TensorFile): string | undefined {
  const meta = file.metadata.ss_base_model_version ?? '';
  if (/sdxl/i.test(meta)) return ARCH.sdxl;
  if (/sd_v2|v2/i.test(meta)) return ARCH.sd2;
  if (/sd_v1|v1/i.test(meta)) return ARCH.sd1;
  const keys = [...file.entries.keys()];
  if (keys.some((k) => k.startsWith('lora_te2_') || k.startsWith('text_encoder_2.'))) return ARCH.sdxl;
  // The input width of a cross-attention key projection is the text encoder's: 768 SD 1.x, 1024 SD 2.x, 2048 SDXL.
  for (const k of keys) {
    if (!/attn2[._]to_k.*(lora_down|lora_A)/.test(k)) continue;
    const width = file.entries.get(k)!.shape[1];
    return width === 768 ? ARCH.sd1 : width === 1024 ? ARCH.sd2 : width === 2048 ? ARCH.sdxl : undefined;
  }
  return undefined;
}

async function describe(kind: AddonKind, path: string): Promise<Pick<AddonEntry, 'baseArchitecture' | 'error'>> {
  if (PICKLE_EXTENSIONS.some((x) => path.toLowerCase().endsWith(x))) return { error: pickleRefusal(path) };
  let file: TensorFile;
  try {
    file = await openSafetensors(path);
  } catch (err) {
    return { error: (err as Error).message };
  }
  try {
    if (kind === 'lora') {
      await parseLoraFile(file);
      return { baseArchitecture: loraArchitecture(file) };
    }
    if (kind === 'textualinversion') {
      const e = await readEmbeddingFile(file);
      if (e.vectors.has('clip_l') || e.vectors.has('clip_g')) return { baseArchitecture: ARCH.sdxl };
      const width = e.vectors.get('any')?.width;
      return { baseArchitecture: width === 768 ? ARCH.sd1 : width === 1024 ? ARCH.sd2 : undefined };
    }
    const keys = [...file.entries.keys()];
    const decoderIn = keys.find((k) => /(^|\.)decoder\.conv_in\.weight$/.test(k));
    if (!decoderIn) return { error: 'not a VAE: no decoder.conv_in.weight (LDM encoder.*/decoder.* keys)' };
    const channels = file.entries.get(decoderIn)!.shape[1];
    return { baseArchitecture: channels === 4 ? `${ARCH.sd1} / ${ARCH.sd2} / ${ARCH.sdxl} (4 latent channels)` : channels === 16 ? `${ARCH.flow16} (16 latent channels)` : undefined };
  } catch (err) {
    return { error: (err as Error).message };
  } finally {
    await file.close();
  }
}

export class AddonCatalog {
  private readonly memo = new Map<string, { stamp: string; facts: Pick<AddonEntry, 'baseArchitecture' | 'error'> }>();

  constructor(readonly modelsDir: string) {}

  /** Every add-on of every kind (or of `kind`), sorted by kind and id. */
  async list(kind?: AddonKind): Promise<AddonEntry[]> {
    const kinds = kind ? [kind] : (Object.keys(ADDON_FOLDERS) as AddonKind[]);
    const out: AddonEntry[] = [];
    for (const k of kinds) {
      const root = join(this.modelsDir, ADDON_FOLDERS[k]);
      const walk = async (rel: string): Promise<void> => {
        let entries;
        try {
          entries = await readdir(join(root, rel), { withFileTypes: true });
        } catch {
          return;
        }
        for (const e of entries) {
          if (e.name.startsWith('.')) continue;
          const r = rel ? `${rel}/${e.name}` : e.name;
          if (e.isDirectory()) {
            await walk(r);
            continue;
          }
          const lower = e.name.toLowerCase();
          if (!e.isFile() || !(lower.endsWith('.safetensors') || PICKLE_EXTENSIONS.some((x) => lower.endsWith(x)))) continue;
          const path = join(root, r);
          const st = await stat(path);
          const stamp = `${st.size}:${st.mtimeMs}`;
          let m = this.memo.get(path);
          if (!m || m.stamp !== stamp) {
            m = { stamp, facts: await describe(k, path) };
            this.memo.set(path, m);
          }
          out.push({ id: r.replace(/\.[^./]+$/, ''), kind: k, path, sizeBytes: st.size, ...m.facts });
        }
      };
      await walk('');
    }
    return out.sort((a, b) => a.kind.localeCompare(b.kind) || a.id.localeCompare(b.id));
  }

  /** The add-on of `kind` named `id`, or undefined (ids are matched against what is on disk, never joined unchecked). */
  async find(kind: AddonKind, id: string): Promise<AddonEntry | undefined> {
    return (await this.list(kind)).find((a) => a.id === id);
  }
}
