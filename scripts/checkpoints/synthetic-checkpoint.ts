/**
 * Writes a single-file Stable Diffusion checkpoint (A1111/ComfyUI LDM layout) with deterministic random
 * weights for any architecture (ldm-layout.ts): the benchmark's real-size SD 1.5 and tests of configurations
 * the fixtures do not cover. Never committed; generated in seconds to a minute.
 *
 * Values (PyTorch-default-like, so activations stay O(1) through any depth): weights uniform in ±1/√fan_in;
 * biases U(±0.02); norm weights 1 + U(±0.1), norm biases U(±0.1); embeddings U(±0.5); the
 * transformers `position_ids` buffer 0..P−1 as int64, as real SD 1.x files carry it.
 */
import { writeSafetensors, type TensorToWrite } from '../../gpu-service/src/weights/safetensors-writer';
import { createMulberry32 } from '../tiny-model/prng';
import { clipTensors, ldmUnetTensors, ldmVaeTensors, type ClipArch, type LdmUnetArch, type LdmVaeArch, type TensorSpec } from './ldm-layout';

/** What to write. */
export interface SyntheticCheckpoint {
  unet: LdmUnetArch;
  vae?: LdmVaeArch;
  /** Text encoders with the prefix each is stored under. */
  textEncoders?: Array<{ prefix: string; arch: ClipArch }>;
  /** Prefixes (defaults: `model.diffusion_model.`, `first_stage_model.`). */
  unetPrefix?: string;
  vaePrefix?: string;
  dtype: 'F32' | 'F16' | 'BF16';
  seed: number;
}

function isNorm(key: string): boolean {
  return /(norm\d?|layer_norm\d|ln_\d|ln_final|final_layer_norm|in_layers\.0|out_layers\.0|out\.0)\.(weight|bias)$/.test(key);
}

function fanIn(shape: readonly number[]): number {
  return shape.slice(1).reduce((a, b) => a * b, 1) || shape[0];
}

/** Deterministic values for one tensor, drawn from `next` (U[0,1)). */
function valuesFor(spec: TensorSpec, next: () => number): Float32Array {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const key = spec.key;
  if (isNorm(key)) {
    const base = key.endsWith('.weight') ? 1 : 0;
    for (let i = 0; i < n; i++) out[i] = base + (next() * 2 - 1) * 0.1;
    return out;
  }
  if (/embedding|positional_embedding/.test(key)) {
    for (let i = 0; i < n; i++) out[i] = (next() * 2 - 1) * 0.5;
    return out;
  }
  if (key.endsWith('.bias') || key.endsWith('_bias')) {
    for (let i = 0; i < n; i++) out[i] = (next() * 2 - 1) * 0.02;
    return out;
  }
  const bound = 1 / Math.sqrt(spec.shape.length === 2 && key === 'text_projection' ? spec.shape[0] : fanIn(spec.shape));
  for (let i = 0; i < n; i++) out[i] = (next() * 2 - 1) * bound;
  return out;
}

/** The tensors of a checkpoint, prefixed, with their value producers (one seeded stream per tensor). */
export function syntheticTensors(c: SyntheticCheckpoint): TensorToWrite[] {
  const specs: Array<{ key: string; shape: number[] }> = [];
  const add = (prefix: string, list: TensorSpec[]) => list.forEach((s) => specs.push({ key: prefix + s.key, shape: s.shape }));
  add(c.unetPrefix ?? 'model.diffusion_model.', ldmUnetTensors(c.unet));
  if (c.vae) add(c.vaePrefix ?? 'first_stage_model.', ldmVaeTensors(c.vae));
  for (const t of c.textEncoders ?? []) add(t.prefix, clipTensors(t.arch));
  const tensors: TensorToWrite[] = specs.map((s, index) => ({
    key: s.key,
    dtype: c.dtype,
    shape: s.shape,
    // A stream per tensor: the values of one tensor do not depend on which others exist.
    values: () => valuesFor(s, createMulberry32((c.seed * 1_000_003 + index * 7919) >>> 0)),
  }));
  for (const t of c.textEncoders ?? []) {
    if (t.arch.layout !== 'transformers') continue;
    tensors.push({ key: `${t.prefix}text_model.embeddings.position_ids`, dtype: 'I64', shape: [1, t.arch.positions], values: () => Array.from({ length: t.arch.positions }, (_, i) => i) });
  }
  return tensors;
}

/**
 * Write the checkpoint.
 * @returns bytes written.
 */
export function writeSyntheticCheckpoint(path: string, c: SyntheticCheckpoint): Promise<number> {
  return writeSafetensors(path, syntheticTensors(c), { format: 'pt', generator: 'image-api scripts/checkpoints (random weights)' });
}
