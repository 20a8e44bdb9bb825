/**
 * The `sd15` benchmark's inputs: a real-size Stable Diffusion 1.5 single-file checkpoint (A1111/ComfyUI LDM
 * layout, F16, deterministic random weights from scripts/checkpoints/synthetic-checkpoint.ts, 2.13 GB) and a
 * small CLIP-format BPE tokenizer (the tiny model's, scripts/tiny-model/tokenizer-files.ts): single files carry
 * no tokenizer, benchmarks never read the test fixtures folder, and the tokenizer's content does not change any timing.
 *
 * Layout under the bench's models folder (never committed; `--models-dir` keeps it between runs):
 *   sd15/checkpoints/sd1.5/bench-sd15.safetensors   the checkpoint (reused when present)
 *   sd15/clip-tokenizer/{vocab.json,merges.txt,…}   the tokenizer
 *   sd15/.cache/                                    the conversion cache (emptied before each run)
 * The checkpoint is written to a temporary name and renamed when complete, so a file under the final name is
 * always whole.
 */
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SD15_ARCH, SDXL_ARCH } from '../../checkpoints/ldm-layout';
import { writeSyntheticCheckpoint, type SyntheticCheckpoint } from '../../checkpoints/synthetic-checkpoint';
import { buildTinyTokenizer, tinyTokenizerFiles } from '../../tiny-model/tokenizer-files';

/** The benchmark checkpoint: SD 1.5 (UNet, VAE, CLIP ViT-L/14 text encoder) stored as F16, as most shared files are. */
export const SD15_BENCH_CHECKPOINT: Readonly<SyntheticCheckpoint> = {
  unet: SD15_ARCH.unet,
  vae: SD15_ARCH.vae,
  textEncoders: [{ prefix: 'cond_stage_model.transformer.', arch: SD15_ARCH.clip }],
  dtype: 'F16',
  seed: 15,
};

/** Model id of the checkpoint (its path under `checkpoints/`, as the service names it). */
export const SD15_BENCH_MODEL_ID = 'sd1.5/bench-sd15.safetensors';

/**
 * The `sdxl` section's checkpoint: SDXL 1.0 base (UNet, VAE, CLIP-L + OpenCLIP bigG under the sgm prefixes), F16,
 * about 6.9 GB. Its head counts follow SDXL's convention (64-wide heads), so it needs no sidecar.
 */
export const SDXL_BENCH_CHECKPOINT: Readonly<SyntheticCheckpoint> = {
  unet: SDXL_ARCH.unet,
  vae: SDXL_ARCH.vae,
  textEncoders: [
    { prefix: 'conditioner.embedders.0.transformer.', arch: SDXL_ARCH.clipL },
    { prefix: 'conditioner.embedders.1.model.', arch: SDXL_ARCH.clipG },
  ],
  dtype: 'F16',
  seed: 10,
};

/** The benchmark sections that build a checkpoint, and their model ids. */
export type CheckpointBenchSection = 'sd15' | 'sdxl';
export const BENCH_MODEL_IDS: Readonly<Record<CheckpointBenchSection, string>> = { sd15: SD15_BENCH_MODEL_ID, sdxl: 'sdxl/bench-sdxl.safetensors' };

/** Where the section's files live. */
export interface Sd15BenchPaths {
  /** `<modelsDir>/sd15`. */
  root: string;
  checkpoint: string;
  tokenizerDir: string;
  /** The conversion cache root. */
  cacheDir: string;
}

/** The section's paths under `modelsDir` (`<modelsDir>/<section>/…`; default the sd15 section). */
export function sd15BenchPaths(modelsDir: string, section: CheckpointBenchSection = 'sd15'): Sd15BenchPaths {
  const root = path.join(path.resolve(modelsDir), section);
  return {
    root,
    checkpoint: path.join(root, 'checkpoints', ...BENCH_MODEL_IDS[section].split('/')),
    tokenizerDir: path.join(root, 'clip-tokenizer'),
    cacheDir: path.join(root, '.cache'),
  };
}

/** What ensureSd15Checkpoint found or wrote. */
export interface Sd15CheckpointFiles extends Sd15BenchPaths {
  /** Size of the checkpoint file, bytes. */
  checkpointBytes: number;
  /** True when this call wrote the checkpoint (false: reused from an earlier run). */
  generated: boolean;
  /** Seconds spent writing it (0 when reused). */
  generationSeconds: number;
}

/**
 * Write the checkpoint (unless a complete one is already there) and the tokenizer files.
 * @param spec what to write (default SD15_BENCH_CHECKPOINT; tests pass a small architecture).
 * @param section whose folder (`sd15` or `sdxl`) it goes in.
 * @throws Error on file-system failures (a partly written checkpoint is removed).
 */
export async function ensureSd15Checkpoint(
  modelsDir: string,
  spec: Readonly<SyntheticCheckpoint> = SD15_BENCH_CHECKPOINT,
  section: CheckpointBenchSection = 'sd15',
): Promise<Sd15CheckpointFiles> {
  const paths = sd15BenchPaths(modelsDir, section);
  await mkdir(path.dirname(paths.checkpoint), { recursive: true });
  await mkdir(paths.tokenizerDir, { recursive: true });
  for (const [name, contents] of Object.entries(tinyTokenizerFiles(buildTinyTokenizer()))) await writeFile(path.join(paths.tokenizerDir, name), contents);

  // A marker beside the file records the spec it was written from, so a changed spec never reuses a stale file.
  const marker = `${paths.checkpoint}.spec.json`;
  const specJson = JSON.stringify(spec);
  let generated = false;
  let generationSeconds = 0;
  if (!(await sameSpec(paths.checkpoint, marker, specJson))) {
    const tmp = `${paths.checkpoint}.tmp-${process.pid}`;
    const started = performance.now();
    try {
      await rm(marker, { force: true });
      await writeSyntheticCheckpoint(tmp, { ...spec });
      await rename(tmp, paths.checkpoint);
      await writeFile(marker, specJson);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    generated = true;
    generationSeconds = (performance.now() - started) / 1000;
  }
  return { ...paths, checkpointBytes: (await stat(paths.checkpoint)).size, generated, generationSeconds };
}

async function sameSpec(checkpoint: string, marker: string, specJson: string): Promise<boolean> {
  try {
    await stat(checkpoint);
    return (await readFile(marker, 'utf8')) === specJson;
  } catch {
    return false;
  }
}
