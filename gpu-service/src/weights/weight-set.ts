/**
 * A network's weights under the names its graph builder asks for (the *canonical* names: upstream's original
 * checkpoint keys — LDM names for Stable Diffusion UNets and VAEs, transformers' CLIP names for text
 * encoders, …), each pointing at a tensor of some opened weights file. A single-file checkpoint maps its
 * keys minus a prefix (`model.diffusion_model.`); a diffusers folder maps converted keys (checkpoints/
 * key-maps); the shape a builder sees may be a reshape of the stored one (same data, e.g. a diffusers VAE
 * attention Linear [C, C] seen as the LDM 1×1 Conv [C, C, 1, 1]).
 */
import { elementCount, type TensorFile } from './tensor-file';

/** Where one canonical tensor lives. */
export interface WeightRef {
  file: TensorFile;
  /** The key inside `file` (for an assembled tensor: its first source's). */
  key: string;
  /** The shape the builder sees (same element count as the stored one). */
  shape: number[];
  /**
   * For a tensor assembled from stored ones (a key map joining diffusers' separate q/k/v into an original fused
   * qkv, or swapping (scale, shift) halves): how to read it. Absent: read `key` from `file`.
   */
  assemble?: () => Promise<Float32Array>;
  /** The stored tensors an assembled one is made of (for provenance: dtypes, LoRA targets). */
  sources?: Array<{ file: TensorFile; key: string }>;
}

/**
 * A canonical tensor made of stored ones concatenated along their first axis (diffusers' to_q, to_k, to_v →
 * the original layout's fused qkv [3C, C]; or q, k, v and the MLP input → FLUX's single-block linear1).
 * @throws Error when the parts' trailing dims differ.
 */
export function concatFirstAxis(parts: readonly WeightRef[]): WeightRef {
  const tail = parts[0].shape.slice(1);
  for (const p of parts) {
    if (p.shape.slice(1).join(',') !== tail.join(',')) throw new Error(`cannot concatenate ${parts.map((q) => `${q.key} [${q.shape}]`).join(', ')}`);
  }
  const rows = parts.reduce((n, p) => n + p.shape[0], 0);
  return {
    file: parts[0].file,
    key: parts[0].key,
    shape: [rows, ...tail],
    sources: parts.flatMap((p) => p.sources ?? [{ file: p.file, key: p.key }]),
    assemble: async () => {
      const out = new Float32Array(rows * tail.reduce((a, b) => a * b, 1));
      let at = 0;
      for (const p of parts) {
        const v = await readRef(p);
        out.set(v, at);
        at += v.length;
      }
      return out;
    },
  };
}

/**
 * A canonical tensor whose first-axis halves are swapped: the original layouts store an adaLN projection's
 * rows as (shift, scale) where diffusers stores (scale, shift).
 */
export function swapFirstAxisHalves(ref: WeightRef): WeightRef {
  if (ref.shape[0] % 2 !== 0) throw new Error(`${ref.key} [${ref.shape}] has no halves to swap`);
  return {
    ...ref,
    sources: ref.sources ?? [{ file: ref.file, key: ref.key }],
    assemble: async () => {
      const v = await readRef(ref);
      const half = v.length / 2;
      const out = new Float32Array(v.length);
      out.set(v.subarray(half), 0);
      out.set(v.subarray(0, half), half);
      return out;
    },
  };
}

/**
 * A canonical tensor no file stores: the identity matrix [n, n] (float32) that upstream substitutes for a projection
 * a layout leaves out (SD 3's CLIP-L `text_projection`: diffusers `create_diffusers_clip_model_from_ldm` sets
 * `torch.eye`, ComfyUI returns the pooled output unprojected). `file` / `key` name where the need arose (errors and
 * provenance); `sources` is empty.
 */
export function identityWeight(file: TensorFile, key: string, n: number): WeightRef {
  return {
    file,
    key,
    shape: [n, n],
    sources: [],
    assemble: async () => {
      const out = new Float32Array(n * n);
      for (let i = 0; i < n; i++) out[i * n + i] = 1;
      return out;
    },
  };
}

/** The values of a reference: assembled, or read from its file. */
export function readRef(ref: WeightRef): Promise<Float32Array> {
  return ref.assemble ? ref.assemble() : ref.file.readFloat32(ref.key);
}

/** A tensor the detected architecture needs is not in the file: the model is broken, with this reason. */
export class MissingWeightError extends Error {
  constructor(
    readonly weightName: string,
    readonly where: string,
  ) {
    super(`${where} has no tensor "${weightName}", which the detected architecture needs`);
    this.name = 'MissingWeightError';
  }
}

/** A tensor whose shape contradicts the architecture read from the other tensors. */
export class WeightShapeError extends Error {
  constructor(weightName: string, where: string, actual: readonly number[], expected: readonly number[]) {
    super(`${where}: tensor "${weightName}" has shape [${actual.join(', ')}], the architecture needs [${expected.join(', ')}]`);
    this.name = 'WeightShapeError';
  }
}

export class WeightSet {
  constructor(
    private readonly refs: ReadonlyMap<string, WeightRef>,
    /** Where the weights come from, for errors (a path and a component name). */
    readonly where: string,
  ) {}

  /**
   * The tensors of `file` whose keys start with `prefix`, named without it.
   * @param where description for errors; default `<path> (<prefix>*)`.
   */
  static fromFile(file: TensorFile, prefix = '', where?: string): WeightSet {
    const refs = new Map<string, WeightRef>();
    for (const e of file.entries.values()) {
      if (e.key.startsWith(prefix)) refs.set(e.key.slice(prefix.length), { file, key: e.key, shape: e.shape });
    }
    return new WeightSet(refs, where ?? (prefix ? `${file.path} (${prefix}*)` : file.path));
  }

  /**
   * The tensors of `file` renamed by `rename` (a key map); keys it returns undefined for are left out.
   * `reshape` may give the canonical shape of a renamed tensor (same element count).
   */
  static mapped(file: TensorFile, rename: (key: string) => string | undefined, where: string, reshape?: (canonical: string, shape: number[]) => number[]): WeightSet {
    const refs = new Map<string, WeightRef>();
    for (const e of file.entries.values()) {
      const name = rename(e.key);
      if (name === undefined) continue;
      const shape = reshape ? reshape(name, e.shape) : e.shape;
      if (elementCount(shape) !== elementCount(e.shape)) throw new Error(`${where}: cannot view ${e.key} [${e.shape}] as ${name} [${shape}]`);
      refs.set(name, { file, key: e.key, shape });
    }
    return new WeightSet(refs, where);
  }

  /** Canonical names, in file order. */
  names(): string[] {
    return [...this.refs.keys()];
  }

  /** Number of tensors. */
  get size(): number {
    return this.refs.size;
  }

  has(name: string): boolean {
    return this.refs.has(name);
  }

  /**
   * The shape the builder sees.
   * @throws MissingWeightError when the tensor is absent.
   */
  shape(name: string): number[] {
    return this.ref(name).shape;
  }

  /** The stored reference (file, key, shape). @throws MissingWeightError */
  ref(name: string): WeightRef {
    const r = this.refs.get(name);
    if (!r) throw new MissingWeightError(name, this.where);
    return r;
  }

  /** float32 values of one tensor. @throws MissingWeightError, or the file's read error */
  read(name: string): Promise<Float32Array> {
    return readRef(this.ref(name));
  }

  /** This set with `refs` added or replaced under their canonical names (assembled tensors of a key map). */
  with(refs: ReadonlyMap<string, WeightRef>): WeightSet {
    return new WeightSet(new Map([...this.refs, ...refs]), this.where);
  }

  /** This set without the named tensors (the stored parts an assembled tensor replaced). */
  without(names: Iterable<string>): WeightSet {
    const drop = new Set(names);
    return new WeightSet(new Map([...this.refs].filter(([n]) => !drop.has(n))), this.where);
  }

  /** The sub-set under `prefix`, named without it (e.g. `input_blocks.1.`). */
  scope(prefix: string): WeightSet {
    const refs = new Map<string, WeightRef>();
    for (const [name, r] of this.refs) if (name.startsWith(prefix)) refs.set(name.slice(prefix.length), r);
    return new WeightSet(refs, `${this.where} ${prefix}*`);
  }

  /** Both sets' tensors (this one wins on a clash). */
  merge(other: WeightSet): WeightSet {
    return new WeightSet(new Map([...other.refs, ...this.refs]), `${this.where} + ${other.where}`);
  }

  /** Highest N for which `${prefix}N${suffix}` names a tensor (−1 when none): counts blocks and layers. */
  maxIndex(prefix: string, suffix = '.'): number {
    let max = -1;
    for (const name of this.refs.keys()) {
      if (!name.startsWith(prefix)) continue;
      const m = /^(\d+)/.exec(name.slice(prefix.length));
      if (m && name.slice(prefix.length + m[1].length).startsWith(suffix)) max = Math.max(max, Number(m[1]));
    }
    return max;
  }
}
