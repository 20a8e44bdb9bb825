/**
 * LoRA weight deltas for a built model: for every module a LoRA set patches, ΔW = Σ strength_i · ΔW_i in the
 * target weight's PyTorch layout (lora-file.ts gives each network's formula), checked to fit the target. The
 * low-rank products run on onnxruntime (a one-node MatMul graph: multithreaded, vectorised) rather than in
 * JavaScript: an SD 1.5 rank-32 LoRA is ~13 G multiply-adds.
 */
import { DataType, OnnxGraph } from '../graphs/onnx-graph';
import { OnnxModel } from '../onnx/session';
import type { LoraFile, LoraModule } from './lora-file';
import { LoraFormatError } from './lora-file';
import type { PatchTarget } from './lora-targets';

/** One LoRA of a request: the parsed file, the strength, and its id (for errors). */
export interface LoraToApply {
  id: string;
  lora: LoraFile;
  /** Multiplier of the file's ΔW (A1111 `<lora:name:0.8>`, Novita `strength`). */
  strength: number;
}

/** The summed ΔW of one target. */
export interface WeightPatch {
  target: PatchTarget;
  /** float32, row-major in target.shape. */
  delta: Float32Array;
}

/** A LoRA that does not fit the model (wrong architecture, nothing matched); `loraIndex` says which of the request's. */
export class LoraMismatchError extends Error {
  constructor(
    readonly loraIndex: number,
    message: string,
  ) {
    super(message);
    this.name = 'LoraMismatchError';
  }
}

let matmul: Promise<OnnxModel> | undefined;

/** A [m, k] · [k, n] float32 product on onnxruntime's CPU provider (one session for the process). */
async function product(a: Float32Array, m: number, k: number, b: Float32Array, n: number): Promise<Float32Array> {
  matmul ??= (() => {
    const g = new OnnxGraph('lora_matmul');
    const x = g.input('a', DataType.FLOAT, ['m', 'k']);
    const y = g.input('b', DataType.FLOAT, ['k', 'n']);
    g.output('y', g.node('MatMul', [x, y]), DataType.FLOAT, ['m', 'n']);
    return OnnxModel.open('lora_matmul.onnx', { executionProviders: ['cpu'] }, { model: g.toBytes() });
  })();
  const out = await (await matmul).run({ a: { data: a, dims: [m, k] }, b: { data: b, dims: [k, n] } }, ['y']);
  return out.y.data;
}

const numel = (shape: readonly number[]) => shape.reduce((x, y) => x * y, 1);

/** Rows × the rest: a PyTorch weight seen as a matrix (Linear [out, in]; Conv [out, in·kh·kw]). */
function asMatrix(shape: readonly number[]): [number, number] {
  return [shape[0], numel(shape) / shape[0]];
}

/** ΔW of one module (before strength), float32 in the module weight's layout flattened to [out, rest]. */
async function moduleDelta(lora: LoraFile, m: LoraModule): Promise<{ delta: Float32Array; rows: number; cols: number }> {
  const read = (role: string) => lora.file.readFloat32(m.factors[role]);
  const shape = (role: string) => lora.file.entries.get(m.factors[role])!.shape;
  if (m.network === 'lora') {
    const [out, r] = asMatrix(shape('up'));
    const [r2, cols] = asMatrix(shape('down'));
    if (r !== r2) throw new LoraFormatError(`LoRA module ${m.name}: up [${shape('up')}] and down [${shape('down')}] ranks differ`);
    const delta = await product(await read('up'), out, r, await read('down'), cols);
    return { delta, rows: out, cols };
  }
  if (m.network === 'loha') {
    const [o1, r1] = asMatrix(shape('w1a'));
    const [, c1] = asMatrix(shape('w1b'));
    const [o2, r2] = asMatrix(shape('w2a'));
    const [, c2] = asMatrix(shape('w2b'));
    if (o1 !== o2 || c1 !== c2) throw new LoraFormatError(`LoHa module ${m.name}: its two products have different shapes`);
    const a = await product(await read('w1a'), o1, r1, await read('w1b'), c1);
    const b = await product(await read('w2a'), o2, r2, await read('w2b'), c2);
    for (let i = 0; i < a.length; i++) a[i] *= b[i];
    return { delta: a, rows: o1, cols: c1 };
  }
  // LoKr: kron(w1, w2); factorised halves are products of their a/b factors.
  const half = async (w: 'w1' | 'w2') => {
    if (m.factors[w]) return { v: await read(w), shape: shape(w) };
    const [o, r] = asMatrix(shape(`${w}a`));
    const bShape = shape(`${w}b`);
    const [, c] = asMatrix(bShape);
    return { v: await product(await read(`${w}a`), o, r, await read(`${w}b`), c), shape: [o, ...bShape.slice(1)] };
  };
  const w1 = await half('w1');
  const w2 = await half('w2');
  if (w1.shape.length !== 2) throw new LoraFormatError(`LoKr module ${m.name}: lokr_w1 must be 2-D, got [${w1.shape}]`);
  const [a, b] = w1.shape;
  const [c] = w2.shape;
  const d = numel(w2.shape) / c; // w2's in·kh·kw
  const rows = a * c;
  const cols = b * d;
  const delta = new Float32Array(rows * cols);
  // kron over the first two axes; conv kernels (w2's trailing dims) stay innermost, as LyCORIS builds them.
  const w2in = w2.shape[1] ?? 1;
  const kernel = d / w2in;
  for (let i = 0; i < a; i++)
    for (let j = 0; j < b; j++) {
      const s = w1.v[i * b + j];
      if (s === 0) continue;
      for (let p = 0; p < c; p++)
        for (let q = 0; q < w2in; q++)
          for (let t = 0; t < kernel; t++) delta[(i * c + p) * cols + (j * w2in + q) * kernel + t] += s * w2.v[(p * w2in + q) * kernel + t];
    }
  return { delta, rows, cols };
}

/**
 * The patches of a LoRA set on a model.
 * @param index every accepted module name → its target (lora-targets.ts).
 * @throws LoraMismatchError naming the LoRA (by its index in `loras`) when none of its modules exists in the model
 *         (it would silently do nothing) or a module's ΔW does not fit its target (a LoRA for another
 *         architecture); LoraFormatError for malformed factors.
 */
export async function loraPatches(loras: readonly LoraToApply[], index: ReadonlyMap<string, PatchTarget>): Promise<WeightPatch[]> {
  const patches = new Map<string, WeightPatch>();
  for (const [i, { id, lora, strength }] of loras.entries()) {
    let matched = 0;
    for (const m of lora.modules) {
      const target = index.get(m.name);
      if (!target) continue;
      matched++;
      const { delta, rows, cols } = await moduleDelta(lora, m);
      const [tRows, tCols] = asMatrix(target.shape);
      if (rows !== tRows || cols !== tCols) {
        throw new LoraMismatchError(i, `LoRA "${id}" does not fit this model: module ${m.name} changes a [${rows}, ${cols}] weight, the model's ${target.initializer} is [${target.shape.join(', ')}] (a LoRA for another architecture?)`);
      }
      const key = `${target.graph}\n${target.initializer}\n${target.rows?.join(':') ?? ''}`;
      let p = patches.get(key);
      if (!p) {
        p = { target, delta: new Float32Array(delta.length) };
        patches.set(key, p);
      }
      const s = strength * m.scale;
      for (let k = 0; k < delta.length; k++) p.delta[k] += s * delta[k];
    }
    if (matched === 0) {
      const sample = lora.modules.slice(0, 2).map((m) => m.name).join(', ');
      throw new LoraMismatchError(i, `LoRA "${id}" matches no layer of this model (its modules are named like ${sample}): it would do nothing; is it for another architecture?`);
    }
  }
  return [...patches.values()];
}
