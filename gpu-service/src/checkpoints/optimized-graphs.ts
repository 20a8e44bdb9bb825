/**
 * A conversion-cache entry's graphs as onnxruntime optimizes them for the CPU execution provider, saved once inside
 * the entry (`<entry>/ort-<onnxruntime version>-cpu-<CPU fingerprint>/<network>/model.onnx` + `model.onnx_data`)
 * and from then on opened without optimizing or repacking weights again (onnxruntime's "offline" mode, session.ts
 * saveOptimizedGraph, with the prepacked weights saved).
 *
 * Why: our graphs keep every Linear weight as the checkpoint stores it ([out, in], for LoRA) behind a Transpose
 * node, and onnxruntime folds those, fuses nodes and repacks every MatMul weight for its GEMM kernels each time a
 * session opens. On the 2-core bench machine (`npm run bench -- --only sd15`), opening SD 1.5's float32 UNet
 * (3.4 GB of weights) took 76 s with every optimization level, 12–18 s with the extended level, 4–8 s from the
 * saved extended-level graph (about 4 s of CPU, mostly repacking 1.2 GB of MatMul weights onto the heap) and
 * 2.6–3.7 s with the packed weights saved too (mapped from the file, 0.15 GB resident after the open instead of
 * 1.2 GB); the layout level ran the UNet no faster there. The saved graphs carry their own copy of the weights
 * (SD 1.5: 4.8 GB beside the entry's 4.3 GB).
 *
 * Only for the CPU provider alone: what the extended level writes for GPU providers was not checked here, so their
 * sessions keep optimizing at load. The packed layouts depend on the CPU (the kernels onnxruntime picks for its
 * instruction set), so the folder is named by a fingerprint of it: hosts of different CPUs sharing a cache each
 * get their own. The onnxruntime version is in the name too (another version may optimize or pack differently);
 * writing a new version's folder removes the other versions' folders of the same CPU.
 * The original graphs stay in the entry: they are what LoRA patches and what other providers open.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { ONNXRUNTIME_VERSION, OnnxModel, saveOptimizedGraph, type SessionOptions } from '../onnx/session';
import type { ConversionCache } from './conversion-cache';

/** Prefix of the optimized-graph folders inside an entry. */
const FOLDER_PREFIX = 'ort-';

let fingerprint: string | undefined;

/**
 * 12 hex digits naming what decides the CPU kernels onnxruntime picks, and so its packed weight layouts: the
 * architecture, the CPU's model name and, where /proc/cpuinfo exists, its instruction-set flags (x86 `flags`, Arm
 * `Features`) — a virtual machine may report one model name for CPUs of different instruction sets.
 */
export function cpuFingerprint(): string {
  if (fingerprint) return fingerprint;
  let features = '';
  try {
    features = /^(?:flags|Features)\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '';
  } catch {
    // not Linux: architecture and model name only
  }
  fingerprint = createHash('sha256').update(`${process.arch}\n${cpus()[0]?.model ?? ''}\n${features}`).digest('hex').slice(0, 12);
  return fingerprint;
}

/**
 * Name of the folder holding the graphs optimized for `options`' providers on this host's CPU, or undefined when
 * they are not saved for those providers (anything but the CPU provider alone).
 */
export function optimizedFolderName(options: SessionOptions): string | undefined {
  const providers = options.executionProviders ?? ['cpu'];
  if (providers.length !== 1 || providers[0] !== 'cpu') return undefined;
  return `${FOLDER_PREFIX}${ONNXRUNTIME_VERSION.replace(/[^0-9A-Za-z.]/g, '_')}-cpu-${cpuFingerprint()}`;
}

/** An entry's graphs, ready to open. */
export interface OptimizedGraphs {
  /** The optimized-graph folder inside the entry, or undefined when sessions optimize at load. */
  folder?: string;
  /** True when this call optimized and saved the graphs. */
  built: boolean;
  /** Seconds spent optimizing and saving (0 when they were saved before). */
  seconds: number;
  /** Why the graphs could not be optimized and saved, when that failed (the original graphs are opened instead). */
  error?: string;
  /** Open the network in `<entry>/<network>/` (`unet`, `text_encoder`, …) with the session options given. */
  open(network: string): Promise<OnnxModel>;
}

/** The entry's networks: its folders that hold a model.onnx (the optimized-graph folders excluded). */
async function networksOf(entryDir: string): Promise<string[]> {
  const names: string[] = [];
  for (const e of await readdir(entryDir, { withFileTypes: true })) {
    if (!e.isDirectory() || e.name.startsWith(FOLDER_PREFIX)) continue;
    try {
      await stat(join(entryDir, e.name, 'model.onnx'));
      names.push(e.name);
    } catch {
      // a folder of small files only (tokenizer, scheduler)
    }
  }
  return names.sort();
}

/**
 * Make sure the entry `key` has its graphs optimized for `options`' providers (optimizing and saving them now, one
 * network at a time so only one session's memory is held, when they are missing), and return how to open them.
 * A failure to optimize or save (e.g. a full disk) is reported in `error` and the original graphs are opened.
 * `settings.atLoad` names networks never saved optimized (opened from the original graph, optimized at load).
 * @throws Error when the entry does not exist.
 */
export async function optimizedGraphs(cache: ConversionCache, key: string, options: SessionOptions, settings: { atLoad?: readonly string[] } = {}): Promise<OptimizedGraphs> {
  const entryDir = cache.dirOf(key);
  const atLoad = (extra: Partial<OptimizedGraphs> = {}): OptimizedGraphs => ({
    built: false,
    seconds: 0,
    ...extra,
    open: (network) => OnnxModel.open(join(entryDir, network, 'model.onnx'), options),
  });
  const folder = optimizedFolderName(options);
  if (!folder) return atLoad();
  const atLoadOnly = new Set(settings.atLoad ?? []);
  const networks = (await networksOf(entryDir)).filter((n) => !atLoadOnly.has(n));
  let derived;
  try {
    derived = await cache.derive(key, folder, async (tmp) => {
      for (const network of networks) {
        const prepacked = (await weightBytes(join(entryDir, network))) >= PREPACK_MIN_BYTES;
        await saveOptimizedGraph(join(entryDir, network, 'model.onnx'), join(tmp, network, 'model.onnx'), options, { prepacked });
      }
    });
  } catch (err) {
    return atLoad({ error: `optimizing the graphs for the CPU execution provider failed: ${(err as Error).message}` });
  }
  if (derived.built) await removeOtherVersions(entryDir, folder);
  return {
    folder,
    built: derived.built,
    seconds: derived.seconds,
    open: (network) =>
      atLoadOnly.has(network) ? OnnxModel.open(join(entryDir, network, 'model.onnx'), options) : OnnxModel.open(join(derived.dir, network, 'model.onnx'), options, {}, 'preoptimized'),
  };
}

/**
 * Graphs with fewer weight bytes than this are saved without their packed weights: packing them at open takes
 * milliseconds, and onnxruntime 1.30 crashes (SIGSEGV, uncatchable) running a saved graph whose packed MatMul
 * weights have widths such as 24 / 72 (the checkpoints-xl fixture's tiny OpenCLIP bigG encoder; every released SD
 * network has multiples of 64).
 */
export const PREPACK_MIN_BYTES = 64 * 1024 * 1024;

/** Bytes of a network folder's external weights (model.onnx_data), 0 when it has none. */
async function weightBytes(networkDir: string): Promise<number> {
  try {
    return (await stat(join(networkDir, 'model.onnx_data'))).size;
  } catch {
    return 0;
  }
}

/** Remove the entry's folders written by other onnxruntime versions for the same provider and CPU. */
async function removeOtherVersions(entryDir: string, keep: string): Promise<void> {
  const providerAndCpu = keep.slice(keep.indexOf('-cpu-'));
  for (const name of await readdir(entryDir)) {
    if (name !== keep && name.startsWith(FOLDER_PREFIX) && name.endsWith(providerAndCpu)) await rm(join(entryDir, name), { recursive: true, force: true });
  }
}
