/**
 * The one module that touches onnxruntime (transformers.js habit): it opens sessions, reads input and
 * output element types and shapes from the session's metadata, converts feeds to those types
 * (float32 ↔ float16, int32 ↔ int64), and when a run fails reports every input's name, type and shape.
 */
import { mkdir } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import * as ort from 'onnxruntime-node';
import { float16ToFloat32, float32ToFloat16 } from './float16';

/** Execution provider names accepted in ORT_EXECUTION_PROVIDERS (onnxruntime-node's own names). */
export type ExecutionProvider = 'cpu' | 'cuda' | 'tensorrt' | 'webgpu' | 'dml' | 'coreml';

/**
 * How onnxruntime runs a session (onnxruntime docs, "Thread management" and "Tune performance"); every field
 * optional, onnxruntime's default when absent. The service's defaults and the measurements behind them are in
 * the README (*onnxruntime settings*), measured by `npm run bench -- --only ort`.
 */
export interface SessionOptions {
  /** Ordered preference list; onnxruntime falls back along it. Default ['cpu']. */
  executionProviders?: ExecutionProvider[];
  /** Threads for one operator; 0 = onnxruntime's default (one per physical core). */
  intraOpNumThreads?: number;
  /** Threads running independent nodes at once (only with executionMode 'parallel'); 0 = onnxruntime's default. */
  interOpNumThreads?: number;
  /** 'sequential' (one node at a time, each using the intra-op pool) or 'parallel' (independent nodes at once). */
  executionMode?: 'sequential' | 'parallel';
  /** onnxruntime's CPU memory arena: reuses freed buffers instead of returning them to the system (default on). */
  enableCpuMemArena?: boolean;
  /** Memory pattern planning: pre-plans activation buffers from the first run's shapes (default on). */
  enableMemPattern?: boolean;
  /** Whether idle intra-op threads spin-wait for work (`session.intra_op.allow_spinning`; default on). */
  allowSpinning?: boolean;
  /** Optimization level for graphs optimized at load (default 'all'; preoptimized graphs are not optimized again). */
  graphOptimizationLevel?: 'basic' | 'extended' | 'all';
}

/** Element type and shape of one graph input/output, from the session metadata. */
export interface ValueInfo {
  name: string;
  /** 'float32' | 'float16' | 'int64' | 'int32' | ... (onnxruntime's Tensor.Type). */
  type: string;
  /** Dimensions; symbolic dims are strings, unknown are -1. */
  shape: ReadonlyArray<number | string>;
}

/** One value to feed: numbers in row-major order plus dims. Converted to the input's element type. */
export interface Feed {
  data: ArrayLike<number> | BigInt64Array;
  dims: readonly number[];
}

/** Outputs of a run, always converted to float32 (integer outputs are not used by the pipeline). */
export type Fetches = Record<string, { data: Float32Array; dims: readonly number[] }>;

/** An error from onnxruntime with the feed described, so a wrong export is easy to diagnose. */
export class OnnxRunError extends Error {
  constructor(modelPath: string, feeds: Record<string, Feed>, inputs: ValueInfo[], cause: unknown) {
    const described = Object.entries(feeds)
      .map(([name, f]) => {
        const info = inputs.find((i) => i.name === name);
        return `${name}: fed [${f.dims.join(', ')}] → expects ${info?.type ?? '?'} [${info?.shape.join(', ') ?? '?'}]`;
      })
      .join('; ');
    super(`onnxruntime run failed for ${modelPath}: ${(cause as Error)?.message ?? cause} (${described})`, { cause });
    this.name = 'OnnxRunError';
  }
}

/** A loaded ONNX graph with typed feeds. */
export class OnnxModel {
  private constructor(
    readonly path: string,
    private readonly session: ort.InferenceSession,
    readonly inputs: ValueInfo[],
    readonly outputs: ValueInfo[],
    /** Inputs fed with every run (bind()), already onnxruntime tensors. */
    private readonly bound: Readonly<Record<string, ort.Tensor>> = {},
    /** False for a bound view: the session belongs to the model it was bound from. */
    private readonly ownsSession = true,
  ) {}

  /**
   * A view of this session that feeds `feeds` with every run (converted to the inputs' element types once, here) and
   * no longer lists them in `inputs`: how one session with LoRA-branch inputs serves each LoRA set (lora-branches.ts).
   * The view's release() does nothing; release the model it was bound from.
   * @throws Error when a feed names no input of the graph.
   */
  bind(feeds: Record<string, Feed>): OnnxModel {
    const bound: Record<string, ort.Tensor> = { ...this.bound };
    for (const [name, feed] of Object.entries(feeds)) {
      const info = this.inputs.find((i) => i.name === name);
      if (!info) throw new Error(`${this.path}: the graph has no input "${name}" to bind`);
      bound[name] = toOrtTensor(info.type, feed);
    }
    return new OnnxModel(this.path, this.session, this.inputs.filter((i) => !(i.name in bound)), this.outputs, bound, false);
  }

  /**
   * Open `path` (a model.onnx; external data such as model.onnx_data beside it is found by onnxruntime).
   * @param source.externalData external-data files given from memory instead of read from disk (`path` as the
   *        model's `location` names it): how weight-patched variants (LoRA) share one graph file. The buffers
   *        must stay alive as long as the session.
   * @param source.model the ModelProto bytes, when they are already in memory (`path` then only names it).
   * @param optimization how onnxruntime optimizes the graph (default: every level, at this load).
   * @throws Error when the file is missing or not a loadable ONNX model.
   */
  static async open(
    path: string,
    options: SessionOptions = {},
    source: { model?: Uint8Array; externalData?: Array<{ path: string; data: Uint8Array }> } = {},
    optimization: GraphOptimization = 'at-load',
  ): Promise<OnnxModel> {
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      ...sessionOptionsFor(options),
      ...(source.externalData ? { externalData: source.externalData } : {}),
      // A graph saved by saveOptimizedGraph is already optimized: optimizing it again would only cost time.
      graphOptimizationLevel: optimization === 'preoptimized' ? 'disabled' : (options.graphOptimizationLevel ?? 'all'),
    };
    const session = source.model ? await ort.InferenceSession.create(source.model, sessionOptions) : await ort.InferenceSession.create(path, sessionOptions);
    const describe = (meta: readonly ort.InferenceSession.ValueMetadata[]): ValueInfo[] =>
      meta.map((m) => ({
        name: m.name,
        type: m.isTensor ? m.type : 'non-tensor',
        shape: m.isTensor ? m.shape : [],
      }));
    return new OnnxModel(path, session, describe(session.inputMetadata), describe(session.outputMetadata));
  }

  /** The input whose name is one of `candidates` (first match), or undefined. */
  findInput(...candidates: string[]): ValueInfo | undefined {
    for (const c of candidates) {
      const hit = this.inputs.find((i) => i.name === c);
      if (hit) return hit;
    }
    return undefined;
  }

  /** The output whose name is one of `candidates` (first match), or undefined. */
  findOutput(...candidates: string[]): ValueInfo | undefined {
    for (const c of candidates) {
      const hit = this.outputs.find((o) => o.name === c);
      if (hit) return hit;
    }
    return undefined;
  }

  /**
   * Run the graph. Feeds are converted to each input's element type from the metadata; only the
   * requested outputs (default: all) are fetched and returned as float32.
   * @throws OnnxRunError naming every fed input's dims and the expected type/shape.
   */
  async run(feeds: Record<string, Feed>, outputNames?: string[]): Promise<Fetches> {
    const ortFeeds: Record<string, ort.Tensor> = { ...this.bound };
    for (const [name, feed] of Object.entries(feeds)) {
      const info = this.inputs.find((i) => i.name === name);
      if (!info) throw new OnnxRunError(this.path, feeds, this.inputs, new Error(`the graph has no input "${name}"`));
      ortFeeds[name] = toOrtTensor(info.type, feed);
    }
    let result: ort.InferenceSession.OnnxValueMapType;
    try {
      result = outputNames ? await this.session.run(ortFeeds, outputNames) : await this.session.run(ortFeeds);
    } catch (err) {
      throw new OnnxRunError(this.path, feeds, this.inputs, err);
    }
    const out: Fetches = {};
    for (const [name, value] of Object.entries(result)) {
      const t = value as ort.Tensor;
      out[name] = { data: fromOrtTensor(t), dims: t.dims };
    }
    return out;
  }

  /** Free the native session (a bound view: nothing). */
  async release(): Promise<void> {
    if (this.ownsSession) await this.session.release();
  }
}

/**
 * How a session's graph is optimized (onnxruntime docs, "Graph optimizations"):
 * - `at-load`: every level (basic, extended, layout) each time the graph is opened: for ONNX folders as users
 *   give them, which we do not write into;
 * - `preoptimized`: none, for a graph that saveOptimizedGraph already wrote.
 */
export type GraphOptimization = 'at-load' | 'preoptimized';

/** Session config entries (onnxruntime_session_options_config_keys.h) that `options` sets. */
function configEntriesFor(options: SessionOptions): Record<string, string> {
  return options.allowSpinning === undefined ? {} : { 'session.intra_op.allow_spinning': options.allowSpinning ? '1' : '0' };
}

function sessionOptionsFor(options: SessionOptions): ort.InferenceSession.SessionOptions {
  // onnxruntime-node rejects an explicit undefined: only pass what is set.
  const entries = configEntriesFor(options);
  return {
    executionProviders: options.executionProviders ?? ['cpu'],
    ...(options.intraOpNumThreads ? { intraOpNumThreads: options.intraOpNumThreads } : {}),
    ...(options.interOpNumThreads ? { interOpNumThreads: options.interOpNumThreads } : {}),
    ...(options.executionMode ? { executionMode: options.executionMode } : {}),
    ...(options.enableCpuMemArena !== undefined ? { enableCpuMemArena: options.enableCpuMemArena } : {}),
    ...(options.enableMemPattern !== undefined ? { enableMemPattern: options.enableMemPattern } : {}),
    ...(Object.keys(entries).length ? { extra: entries } : {}),
  };
}

/**
 * onnxruntime's "offline" optimization: optimize the graph at `source` once for `options`' execution providers and
 * write the result to `target` (a model.onnx, its initializers of 1 KiB and more in `<target>_data` beside it), to be
 * opened later with `OnnxModel.open(target, options, {}, 'preoptimized')` without optimizing again.
 *
 * Levels basic and extended only (constant folding — e.g. the Transpose of every Linear weight —, node fusions):
 * onnxruntime documents the layout level (NCHWc conv weights) as specific to the CPU it ran on.
 * With `prepacked`, the weights as the kernels repack them (onnxruntime's MLAS GEMM layouts) are written to the data
 * file too, and opening the graph maps them from the file instead of packing them again on the heap. Those layouts
 * are chosen for the CPU the packing ran on: only for a file that no other kind of CPU will open.
 * @throws Error when onnxruntime cannot load or optimize the graph, or cannot write `target`.
 */
export async function saveOptimizedGraph(source: string, target: string, options: SessionOptions = {}, save: { prepacked?: boolean } = {}): Promise<void> {
  await mkdir(dirname(target), { recursive: true });
  const session = await ort.InferenceSession.create(source, {
    ...sessionOptionsFor(options),
    graphOptimizationLevel: 'extended',
    optimizedModelFilePath: target,
    // Session config entries (onnxruntime_session_options_config_keys.h); onnxruntime-node takes them flat.
    extra: {
      ...configEntriesFor(options),
      'session.optimized_model_external_initializers_file_name': `${basename(target)}_data`,
      'session.optimized_model_external_initializers_min_size_in_bytes': '1024',
      ...(save.prepacked ? { 'session.save_external_prepacked_constant_initializers': '1' } : {}),
    },
  });
  await session.release();
}

function toOrtTensor(type: string, feed: Feed): ort.Tensor {
  const { data, dims } = feed;
  switch (type) {
    case 'float32':
      return new ort.Tensor('float32', data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>), dims);
    case 'float16':
      return new ort.Tensor('float16', float32ToFloat16(data as ArrayLike<number>), dims);
    case 'float64':
      return new ort.Tensor('float64', Float64Array.from(data as ArrayLike<number>), dims);
    case 'int64':
      return new ort.Tensor(
        'int64',
        data instanceof BigInt64Array ? data : BigInt64Array.from(Array.from(data as ArrayLike<number>, (v) => BigInt(Math.round(v)))),
        dims,
      );
    case 'int32':
      return new ort.Tensor('int32', Int32Array.from(data as ArrayLike<number>, (v) => Math.round(Number(v))), dims);
    default:
      throw new Error(`unsupported input element type ${type}`);
  }
}

function fromOrtTensor(t: ort.Tensor): Float32Array {
  switch (t.type) {
    case 'float32':
      return t.data as Float32Array;
    case 'float16': {
      const d = t.data as unknown;
      // onnxruntime-node returns raw bits as Uint16Array (or Float16Array where the runtime has it).
      return d instanceof Uint16Array ? float16ToFloat32(d) : Float32Array.from(d as ArrayLike<number>);
    }
    default:
      return Float32Array.from(t.data as ArrayLike<number>, Number);
  }
}

/** onnxruntime's version string (for the reproducibility receipt). */
export const ONNXRUNTIME_VERSION: string = ort.env.versions?.node ?? ort.env.versions?.common ?? 'unknown';

/** Execution providers this onnxruntime-node build can use ('cpu', 'webgpu', and 'cuda'/'tensorrt' when installed). */
export function availableExecutionProviders(): string[] {
  return ort.listSupportedBackends().map((b) => b.name);
}
