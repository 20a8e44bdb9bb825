/**
 * A temporary MODELS_DIR holding fixture checkpoints the way a user lays them out: the file under
 * `checkpoints/<id>`, its sidecar `<name>.json` with the diffusers component configs the fixtures' cases.json
 * lists (what the tensors cannot tell: heads, GroupNorm groups, prediction type), and the CLIP BPE files in
 * `tokenizers/clip-vit-large-patch14/` (single files carry no tokenizer).
 */
import { copyFile, cp, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fixtureDir } from './checkpoint-fixtures';

/** The tokenizer folder the engine reads for single-file checkpoints, relative to MODELS_DIR. */
export const TOKENIZER_SUBDIR = 'tokenizers/clip-vit-large-patch14';

/** A fresh temporary MODELS_DIR with the CLIP tokenizer files in place. */
export async function makeModelsDir(prefix = 'models-'): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  const tok = path.join(dir, TOKENIZER_SUBDIR);
  await mkdir(tok, { recursive: true });
  for (const f of ['vocab.json', 'merges.txt']) await copyFile(path.join(fixtureDir('clip-tokenizer'), f), path.join(tok, f));
  return dir;
}

/**
 * Copy a fixture single file to `MODELS_DIR/checkpoints/<id>` with a sidecar from the family's cases.json
 * configs (`unet`, `vae`, `text_encoder`, `scheduler`).
 * @param family e.g. `checkpoints/sd15-tiny`.
 * @param file the single file inside it.
 * @returns the checkpoint's path.
 */
export async function addFixtureCheckpoint(modelsDir: string, family: string, file: string, id: string, opts: { sidecar?: boolean } = {}): Promise<string> {
  const target = path.join(modelsDir, 'checkpoints', id);
  await mkdir(path.dirname(target), { recursive: true });
  await copyFile(path.join(fixtureDir(family), file), target);
  if (opts.sidecar ?? true) {
    const cases = JSON.parse(await readFile(path.join(fixtureDir(family), 'cases.json'), 'utf8')) as { configs: Record<string, unknown> };
    const { unet, vae, text_encoder, scheduler } = cases.configs;
    await writeFile(target.replace(/\.safetensors$/, '.json'), JSON.stringify({ unet, vae, text_encoder, scheduler }));
  }
  return target;
}

/** Copy a fixture diffusers folder to `MODELS_DIR/checkpoints/<id>/`. */
export async function addFixtureDiffusersFolder(modelsDir: string, family: string, id: string): Promise<string> {
  const target = path.join(modelsDir, 'checkpoints', id);
  await cp(path.join(fixtureDir(family), 'diffusers'), target, { recursive: true });
  return target;
}

/**
 * Copy a checkpoints-xl single file (`sdxl-base` or `sdxl-refiner`) to `MODELS_DIR/checkpoints/<id>` with a sidecar
 * of its cases.json `models` configs (`unet`, `vae`, `text_encoder`, `text_encoder_2`, `scheduler`); where the
 * refiner's entry says "same weights as sdxl-base", the base's config is used.
 * @returns the checkpoint's path.
 */
export async function addXlFixtureCheckpoint(modelsDir: string, model: 'sdxl-base' | 'sdxl-refiner', id: string): Promise<string> {
  const cases = JSON.parse(await readFile(path.join(fixtureDir('checkpoints-xl'), 'cases.json'), 'utf8')) as {
    models: Record<string, Record<string, unknown> & { files: { single_file: { path: string } } }>;
  };
  const m = cases.models[model];
  const target = path.join(modelsDir, 'checkpoints', id);
  await mkdir(path.dirname(target), { recursive: true });
  await copyFile(path.join(fixtureDir('checkpoints-xl'), m.files.single_file.path), target);
  const configOf = (name: string) => (typeof m[name] === 'string' ? cases.models['sdxl-base'][name] : m[name]);
  const sidecar = Object.fromEntries(['unet', 'vae', 'text_encoder', 'text_encoder_2', 'scheduler'].map((n) => [n, configOf(n)]).filter(([, v]) => v !== undefined));
  await writeFile(target.replace(/\.safetensors$/, '.json'), JSON.stringify(sidecar));
  return target;
}
