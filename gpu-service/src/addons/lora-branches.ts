/**
 * LoRA as low-rank side branches of a built graph: one session per model serves every LoRA set, the set's factors
 * are fed with each run, so switching sets costs no session, no weight copy and no ΔW product.
 *
 * Every Linear (`MatMul(x, Transpose(W))`, graphs/layers.ts `linear`) and every ungrouped Conv of the UNet and text
 * encoder graphs gets a branch added to its output (before the bias Add for a Linear; a Conv's bias stays inside it):
 *   Linear  y = x·Wᵀ + (x·Dᵀ)·Uᵀ          Dᵀ: input `lora_down:<W>` [in, r], Uᵀ: input `lora_up:<W>` [r, out]
 *   Conv    y = conv(x, W) + conv₁ₓ₁(conv(x, D), U)   D: [r, in, kh, kw] with W's strides/pads/dilations, U: [out, r, 1, 1]
 * With D = Σ downᵢ stacked along the rank and U = Σ strengthᵢ·scaleᵢ·upᵢ side by side, the branch is exactly
 * x·ΔWᵀ for ΔW = Σ strengthᵢ · alphaᵢ/rankᵢ · upᵢ·downᵢ (linearity; LoCon's conv factorisation is the same
 * identity: ΔW[o, c, :, :] = Σⱼ up[o, j] · down[j, c, :, :]). The rank r is a symbolic dimension per branch; a
 * branch the set does not touch is fed rank-1 zeros (y + 0 = y exactly). The base weights stay initializers, so
 * onnxruntime still folds their Transposes and packs them for its GEMM kernels.
 *
 * Only plain LoRA / LoCon factors are branches; LoHa and LoKr products are not low-rank factorisations of this
 * shape and take the patched-weights path (patched-graphs.ts).
 */
import { copyFile, link, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import type { ConversionCache } from '../checkpoints/conversion-cache';
import { optimizedFolderName, PREPACK_MIN_BYTES } from '../checkpoints/optimized-graphs';
import { readExternalLayout, type ExternalTensor } from '../onnx/external-layout';
import { OnnxModel, saveOptimizedGraph, type SessionOptions } from '../onnx/session';
import { LoraFormatError } from './lora-file';
import { LoraMismatchError, type LoraToApply } from './lora-patch';
import type { PatchTarget } from './lora-targets';

const { onnx } = onnxProto;

/** One weight of a graph with a LoRA branch. */
export interface BranchSite {
  /** The weight's initializer (its checkpoint key). */
  initializer: string;
  kind: 'linear' | 'conv';
  /** Output features / channels (rows of the PyTorch weight). */
  out: number;
  /** Input features / channels. */
  in: number;
  /** Conv kernel [kh, kw]; [1, 1] for a Linear. */
  kernel: [number, number];
  /** Graph inputs of the branch's factors. */
  down: string;
  up: string;
}

/** Graph input names of the branch factors of weight `initializer`. */
export const branchInputs = (initializer: string) => ({ down: `lora_down:${initializer}`, up: `lora_up:${initializer}` });

const attr = (node: onnxProto.onnx.INodeProto, name: string) => node.attribute?.find((a) => a.name === name);

/**
 * Add a LoRA branch to every Linear and ungrouped Conv of an ONNX graph (see the module comment).
 * @param modelBytes a ModelProto whose weights are initializers (external data stays where it is referenced).
 * @returns the rewritten ModelProto and its branch sites by weight name.
 */
export function addLoraBranches(modelBytes: Uint8Array): { model: Uint8Array; sites: Map<string, BranchSite> } {
  const model = onnx.ModelProto.decode(modelBytes);
  const graph = model.graph!;
  const inits = new Map<string, onnxProto.onnx.ITensorProto>();
  for (const t of graph.initializer ?? []) inits.set(t.name ?? '', t);
  const consumers = new Map<string, onnxProto.onnx.INodeProto[]>();
  for (const n of graph.node ?? []) for (const i of n.input ?? []) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  const sites = new Map<string, BranchSite>();
  const after = new Map<onnxProto.onnx.INodeProto, onnxProto.onnx.INodeProto[]>();
  const inputs: onnxProto.onnx.IValueInfoProto[] = [];
  let uid = 0;
  const valueInfo = (name: string, elemType: number, dims: Array<number | string>): onnxProto.onnx.IValueInfoProto => ({
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  });
  for (const [name, t] of inits) {
    const dims = (t.dims ?? []).map(Number);
    const users = consumers.get(name) ?? [];
    if (!name.endsWith('.weight') || users.length !== 1) continue;
    const user = users[0];
    const { down, up } = branchInputs(name);
    const rank = `lora_rank_${sites.size}`;
    const elem = t.dataType ?? onnx.TensorProto.DataType.FLOAT;
    const branchOf = (host: onnxProto.onnx.INodeProto, nodes: (x: string, out: string) => onnxProto.onnx.INodeProto[]) => {
      const y = host.output![0];
      const base = `${y}__lora_base`;
      host.output![0] = base;
      const branch = `${y}__lora_branch`;
      after.set(host, [...nodes(host.input![0], branch), { opType: 'Add', input: [base, branch], output: [y], name: `lora_add_${uid++}` }]);
    };
    if (user.opType === 'Transpose' && dims.length === 2 && (user.domain ?? '') === '') {
      const perm = attr(user, 'perm')?.ints?.map(Number);
      if (perm && !(perm[0] === 1 && perm[1] === 0)) continue;
      const matmuls = consumers.get(user.output![0]) ?? [];
      if (matmuls.length === 0 || matmuls.some((m) => m.opType !== 'MatMul' || m.input![1] !== user.output![0])) continue;
      const [out, inF] = dims;
      for (const m of matmuls) {
        branchOf(m, (x, o) => {
          const d = `${o}__down`;
          return [
            { opType: 'MatMul', input: [x, down], output: [d], name: `lora_down_${uid++}` },
            { opType: 'MatMul', input: [d, up], output: [o], name: `lora_up_${uid++}` },
          ];
        });
      }
      inputs.push(valueInfo(down, elem, [inF, rank]), valueInfo(up, elem, [rank, out]));
      sites.set(name, { initializer: name, kind: 'linear', out, in: inF, kernel: [1, 1], down, up });
    } else if (user.opType === 'Conv' && dims.length === 4 && user.input![1] === name && (user.domain ?? '') === '') {
      const group = Number(attr(user, 'group')?.i ?? 1);
      if (group !== 1 || attr(user, 'auto_pad')) continue;
      const [out, inC, kh, kw] = dims;
      const kept = (user.attribute ?? []).filter((a) => ['strides', 'pads', 'dilations', 'kernel_shape'].includes(a.name ?? ''));
      branchOf(user, (x, o) => {
        const d = `${o}__down`;
        return [
          { opType: 'Conv', input: [x, down], output: [d], name: `lora_down_${uid++}`, attribute: kept },
          { opType: 'Conv', input: [d, up], output: [o], name: `lora_up_${uid++}`, attribute: [{ name: 'kernel_shape', type: onnx.AttributeProto.AttributeType.INTS, ints: [1, 1] }] },
        ];
      });
      inputs.push(valueInfo(down, elem, [rank, inC, kh, kw]), valueInfo(up, elem, [out, rank, 1, 1]));
      sites.set(name, { initializer: name, kind: 'conv', out, in: inC, kernel: [kh, kw], down, up });
    }
  }
  // Keep the node list topologically sorted: each branch right after the node it adds to.
  const nodes: onnxProto.onnx.INodeProto[] = [];
  for (const n of graph.node ?? []) nodes.push(n, ...(after.get(n) ?? []));
  graph.node = nodes;
  graph.input = [...(graph.input ?? []), ...inputs];
  return { model: onnx.ModelProto.encode(model).finish(), sites };
}

/** A network of a model with LoRA branches, open. */
export interface BranchedGraph {
  network: string;
  session: OnnxModel;
  sites: Map<string, BranchSite>;
  /** The base graph's initializers (the LoRA target index reads their names and dims). */
  layout: Map<string, ExternalTensor>;
}

/** Version of the branch rewrite: part of the derived folders' names, so a changed rewrite is written again. */
const BRANCHES_VERSION = 1;

/**
 * Open `networks` of the conversion-cache entry `key` with LoRA branches. The rewritten graphs are written once into
 * the entry (`<entry>/lora-v1/<network>/model.onnx`, their data files hard links to the base graphs', so no weight
 * is copied); on the CPU provider they are also optimized by onnxruntime once and saved
 * (`<entry>/lora-v1-<optimized folder>/<network>/`, as optimized-graphs.ts does for the plain graphs, packed weights
 * included), so later processes open them without optimizing; other providers optimize them at each open.
 * @throws Error when the entry or a network is missing, or onnxruntime cannot load or optimize the graph.
 */
export async function openBranchedGraphs(cache: ConversionCache, key: string, networks: readonly string[], options: SessionOptions): Promise<BranchedGraph[]> {
  const entry = cache.dirOf(key);
  const rewritten = async (network: string) => {
    const modelPath = join(entry, network, 'model.onnx');
    const [bytes, layout] = await Promise.all([readFile(modelPath), readExternalLayout(modelPath)]);
    return { ...addLoraBranches(bytes), layout };
  };
  const graphs = await Promise.all(networks.map(async (network) => ({ network, ...(await rewritten(network)) })));
  const source = await cache.derive(key, `lora-v${BRANCHES_VERSION}`, async (tmp) => {
    for (const g of graphs) {
      await mkdir(join(tmp, g.network), { recursive: true });
      await writeFile(join(tmp, g.network, 'model.onnx'), g.model);
      // The rewritten graph names the base graph's data files: linked, not copied.
      for (const l of new Set([...g.layout.values()].map((t) => t.location))) {
        try {
          await link(join(entry, g.network, l), join(tmp, g.network, l));
        } catch {
          await copyFile(join(entry, g.network, l), join(tmp, g.network, l));
        }
      }
    }
  });
  const folder = optimizedFolderName(options);
  const optimized = folder
    ? await cache.derive(key, `lora-v${BRANCHES_VERSION}-${folder}`, async (tmp) => {
        for (const { network } of graphs) {
          const bytes = (await stat(join(source.dir, network, 'model.onnx_data')).catch(() => ({ size: 0 }))).size;
          await saveOptimizedGraph(join(source.dir, network, 'model.onnx'), join(tmp, network, 'model.onnx'), options, { prepacked: bytes >= PREPACK_MIN_BYTES });
        }
      })
    : undefined;
  const out: BranchedGraph[] = [];
  try {
    for (const g of graphs) {
      const session = optimized ? await OnnxModel.open(join(optimized.dir, g.network, 'model.onnx'), options, {}, 'preoptimized') : await OnnxModel.open(join(source.dir, g.network, 'model.onnx'), options);
      out.push({ network: g.network, session, sites: g.sites, layout: g.layout });
    }
  } catch (err) {
    await Promise.all(out.map((g) => g.session.release()));
    throw err;
  }
  return out;
}

/** The low-rank factors one LoRA module adds to a branch. */
interface ModuleFactors {
  /** [r, in·kh·kw], float32. */
  down: Float32Array;
  /** [rowsOut, r], float32, already multiplied by strength · alpha/rank. */
  up: Float32Array;
  rank: number;
  /** First output row of the target this module writes (OpenCLIP's fused q/k/v), else 0. */
  rowOffset: number;
}

/** The feeds of one LoRA set, per graph folder (`unet`, `text_encoder`, `text_encoder_2`). */
export type BranchFeeds = Map<string, Record<string, { data: Float32Array; dims: number[] }>>;

const numel = (shape: readonly number[]) => shape.reduce((x, y) => x * y, 1);
const asMatrix = (shape: readonly number[]): [number, number] => [shape[0], numel(shape) / shape[0]];

/**
 * The branch feeds of a LoRA set: every branch of every graph, with the set's stacked factors where its modules
 * patch that weight and rank-1 zeros elsewhere.
 * @param graphs the branched graphs by folder (their sites).
 * @returns undefined when the set cannot be expressed as branches (a LoHa / LoKr module, or a target that is not a
 *          branch site): the caller then patches weights instead (lora-patch.ts, patched-graphs.ts).
 * @throws LoraMismatchError / LoraFormatError as loraPatches does (nothing matched, another architecture's shapes,
 *         factors of different ranks).
 */
export async function loraBranchFeeds(loras: readonly LoraToApply[], index: ReadonlyMap<string, PatchTarget>, graphs: ReadonlyMap<string, ReadonlyMap<string, BranchSite>>): Promise<BranchFeeds | undefined> {
  const perSite = new Map<string, ModuleFactors[]>(); // `${graph}\n${initializer}` → factors
  for (const [i, { id, lora, strength }] of loras.entries()) {
    let matched = 0;
    for (const m of lora.modules) {
      const target = index.get(m.name);
      if (!target) continue;
      matched++;
      const site = graphs.get(target.graph)?.get(target.initializer);
      if (m.network !== 'lora' || !site) return undefined;
      const shape = (role: string) => lora.file.entries.get(m.factors[role])!.shape;
      const [rows, r] = asMatrix(shape('up'));
      const [r2, cols] = asMatrix(shape('down'));
      if (r !== r2) throw new LoraFormatError(`LoRA module ${m.name}: up [${shape('up')}] and down [${shape('down')}] ranks differ`);
      const [tRows, tCols] = asMatrix(target.shape);
      if (rows !== tRows || cols !== tCols) {
        throw new LoraMismatchError(i, `LoRA "${id}" does not fit this model: module ${m.name} changes a [${rows}, ${cols}] weight, the model's ${target.initializer} is [${target.shape.join(', ')}] (a LoRA for another architecture?)`);
      }
      const up = await lora.file.readFloat32(m.factors.up);
      const s = strength * m.scale;
      for (let k = 0; k < up.length; k++) up[k] *= s;
      const key = `${target.graph}\n${target.initializer}`;
      perSite.set(key, [...(perSite.get(key) ?? []), { down: await lora.file.readFloat32(m.factors.down), up, rank: r, rowOffset: target.rows?.[0] ?? 0 }]);
    }
    if (matched === 0) {
      const sample = lora.modules.slice(0, 2).map((m) => m.name).join(', ');
      throw new LoraMismatchError(i, `LoRA "${id}" matches no layer of this model (its modules are named like ${sample}): it would do nothing; is it for another architecture?`);
    }
  }
  const feeds: BranchFeeds = new Map();
  for (const [graph, sites] of graphs) {
    const mine: Record<string, { data: Float32Array; dims: number[] }> = {};
    for (const site of sites.values()) {
      const factors = perSite.get(`${graph}\n${site.initializer}`) ?? [];
      const R = Math.max(1, factors.reduce((n, f) => n + f.rank, 0));
      const cols = site.in * site.kernel[0] * site.kernel[1];
      const down = new Float32Array(R * cols);
      const up = new Float32Array(site.out * R);
      let off = 0;
      for (const f of factors) {
        const rowsOut = f.up.length / f.rank;
        if (site.kind === 'linear') {
          // Dᵀ [in, R], Uᵀ [R, out].
          for (let j = 0; j < f.rank; j++) for (let c = 0; c < cols; c++) down[c * R + off + j] = f.down[j * cols + c];
          for (let o = 0; o < rowsOut; o++) for (let j = 0; j < f.rank; j++) up[(off + j) * site.out + f.rowOffset + o] = f.up[o * f.rank + j];
        } else {
          // D [R, in, kh, kw], U [out, R, 1, 1].
          down.set(f.down, off * cols);
          for (let o = 0; o < rowsOut; o++) for (let j = 0; j < f.rank; j++) up[(f.rowOffset + o) * R + off + j] = f.up[o * f.rank + j];
        }
        off += f.rank;
      }
      if (site.kind === 'linear') {
        mine[site.down] = { data: down, dims: [site.in, R] };
        mine[site.up] = { data: up, dims: [R, site.out] };
      } else {
        mine[site.down] = { data: down, dims: [R, site.in, site.kernel[0], site.kernel[1]] };
        mine[site.up] = { data: up, dims: [site.out, R, 1, 1] };
      }
    }
    feeds.set(graph, mine);
  }
  return feeds;
}
