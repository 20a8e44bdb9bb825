/**
 * What the model listing shows for a checkpoint (a single file or a diffusers folder with safetensors
 * weights), read without building anything: the header, the sidecar, the detected architecture, prediction
 * type, native size, capabilities, dtypes and the conversion cache's state. A file that cannot be served is
 * returned with `error` saying why (pickle, truncated, lying header, missing tensors, unknown architecture,
 * missing tokenizer), never thrown, so one broken file never hides the others.
 *
 * Results are remembered per path until the file or its sidecar changes (size or mtime), so listing a folder of
 * multi-gigabyte checkpoints re-reads no header.
 */
import { stat } from 'node:fs/promises';
import { cacheKeyOf, openCheckpoint, tokenizerFiles, type CheckpointEngineOptions, type CheckpointRef, type TokenizerFiles } from '../checkpoints/checkpoint-engine';
import { describeModel } from '../checkpoints/model-spec';
import { describeFlowModel } from '../checkpoints/flow-spec';
import { isFlowFamily } from '../checkpoints/convert-flow';
import { FLOW_SAMPLER_IDS } from '../diffusion/samplers/flow-samplers';
import { sidecarPaths } from '../checkpoints/sidecar';
import type { CheckpointParts } from '../checkpoints/open-checkpoint';
import type { ModelFolder } from './model-folder';
import { releaseVariant } from '../checkpoints/release-variant';

/** `{variant}` when the id names a release variant of the architecture, else nothing. */
function variantOf(architecture: string, id: string): { variant?: string } {
  const variant = releaseVariant(architecture, id);
  return variant ? { variant } : {};
}

/** Checkpoint facts beyond ModelFolder's (shown by GET /v1/models). */
export interface CheckpointFacts {
  format: CheckpointRef['format'];
  architecture?: string;
  /** A release the tensors cannot tell apart, from the model id (SD 3.5 Large `turbo`; checkpoints/release-variant.ts). */
  variant?: string;
  /** 'flow' for flow-matching transformers (FLUX.1, SD 3.x). */
  prediction_type?: 'epsilon' | 'v_prediction' | 'flow';
  /** Canonical ids of the samplers the model accepts when not all apply (flow models: samplers/flow-samplers.ts). */
  samplers?: string[];
  /** Element type the weights are stored in (F16, F32, BF16; a GGUF file's quantization, e.g. Q4_0). */
  stored_dtype?: string;
  /** A GGUF file's own `general.architecture` (e.g. "flux", "sd1"). */
  gguf_architecture?: string;
  /** Float type the engine builds and runs the graphs in on this service. */
  dtype: string;
  /** Conversion cache state: 'cached' (built, loads in seconds), 'building', or 'missing' (built on first use). */
  cache: 'cached' | 'building' | 'missing';
}

/** A checkpoint's ModelFolder, with the checkpoint facts. */
export type CheckpointFolder = ModelFolder & { checkpoint: CheckpointFacts };

interface Remembered {
  stamp: string;
  folder: CheckpointFolder;
  /** What the cache key is computed from, once the files' hashes are known (after a first load). */
  keyInputs?: { parts: Pick<CheckpointParts, 'contentFiles' | 'sidecarBytes'>; tokenizer: TokenizerFiles };
  cacheKey?: string;
}

async function stampOf(path: string): Promise<string> {
  const parts: string[] = [];
  for (const p of [path, ...sidecarPaths(path)]) {
    try {
      const s = await stat(p);
      parts.push(`${s.size}:${s.mtimeMs}`);
    } catch {
      parts.push('-');
    }
  }
  return parts.join('|');
}

export class CheckpointInspector {
  private readonly memo = new Map<string, Remembered>();

  constructor(private readonly engine: CheckpointEngineOptions) {}

  /**
   * Facts of one checkpoint (never throws: problems are in `error`).
   * @param ref id, path and format (from the catalog or a top-level folder).
   */
  async inspect(ref: CheckpointRef): Promise<CheckpointFolder> {
    const stamp = await stampOf(ref.path);
    let r = this.memo.get(ref.path);
    if (!r || r.stamp !== stamp || r.folder.name !== ref.id) {
      r = await this.read(ref, stamp);
      this.memo.set(ref.path, r);
    }
    if (!r.cacheKey && r.keyInputs) r.cacheKey = await this.knownCacheKey(r.keyInputs.parts, r.keyInputs.tokenizer);
    const cache = r.cacheKey ? await this.engine.cache.state(r.cacheKey) : 'missing';
    return { ...r.folder, checkpoint: { ...r.folder.checkpoint, cache } };
  }

  /**
   * The cache key when every file's content hash is already known (the file was hashed at a load or conversion),
   * else undefined: listing never reads a multi-gigabyte file whole just to say 'missing'.
   */
  private async knownCacheKey(parts: Pick<CheckpointParts, 'contentFiles' | 'sidecarBytes'>, tokenizer: TokenizerFiles): Promise<string | undefined> {
    const known = await Promise.all(parts.contentFiles.map((f) => this.engine.hashes.known(f)));
    return known.every((h) => h) ? (await cacheKeyOf(parts, this.engine, tokenizer)).key : undefined;
  }

  private async read(ref: CheckpointRef, stamp: string): Promise<Remembered> {
    const dtype = this.engine.floatType;
    const base = { name: ref.id, dir: ref.path, kind: 'checkpoint' as const, capabilities: [], footprintBytes: 0 };
    let parts;
    try {
      parts = await openCheckpoint(ref, this.engine);
    } catch (err) {
      return { stamp, folder: { ...base, error: (err as Error).message, checkpoint: { format: ref.format, dtype, cache: 'missing' } } };
    }
    try {
      const spec = isFlowFamily(parts.family) ? await describeFlowModel(parts) : await describeModel(parts);
      const checkpoint: CheckpointFacts = {
        format: ref.format,
        architecture: spec.architecture,
        ...(variantOf(spec.architecture, ref.id)),
        prediction_type: spec.predictionType,
        ...(spec.predictionType === 'flow' ? { samplers: [...FLOW_SAMPLER_IDS] } : {}),
        // GGUF files keep their norms and biases in F16/F32: the quantization is what describes the file.
        stored_dtype: parts.metadata?.quantization ?? spec.storedDtype,
        ...(parts.metadata?.architecture ? { gguf_architecture: parts.metadata.architecture } : {}),
        dtype,
        cache: 'missing',
      };
      let tokenizer: Awaited<ReturnType<typeof tokenizerFiles>> | undefined;
      let error: string | undefined;
      try {
        tokenizer = await tokenizerFiles(ref, this.engine, parts);
      } catch (err) {
        error = (err as Error).message;
      }
      const keyInputs = tokenizer ? { parts: { contentFiles: parts.contentFiles, sidecarBytes: parts.sidecarBytes }, tokenizer } : undefined;
      const cacheKey = keyInputs ? await this.knownCacheKey(keyInputs.parts, keyInputs.tokenizer) : undefined;
      const maxPixels = Math.max(spec.nativeSize[0] * spec.nativeSize[1] * 4, 1024 * 1024);
      const folder: CheckpointFolder = {
        ...base,
        capabilities: error ? [] : spec.capabilities,
        info: { name: ref.id, dir: ref.path, nativeSize: spec.nativeSize, maxPixels, scalingFactor: spec.vae!.config.scalingFactor, shiftFactor: spec.vae!.config.shiftFactor, hasVaeEncoder: !!spec.vae!.config.encoder },
        // Weights as the engine holds them: every parameter in the graphs' float type.
        footprintBytes: spec.parameterCount * (dtype === 'float16' ? 2 : 4),
        ...(error ? { error } : {}),
        checkpoint,
      };
      return { stamp, folder, keyInputs, cacheKey };
    } catch (err) {
      return { stamp, folder: { ...base, error: (err as Error).message, checkpoint: { format: ref.format, dtype, cache: 'missing' } } };
    } finally {
      await parts.close();
    }
  }
}
