/**
 * Which of the requested onnxruntime execution providers (ORT_EXECUTION_PROVIDERS) can run here.
 * Each one is probed by opening a one-node ONNX graph (Identity) with that provider alone and running it:
 * that is what tells apart a provider this onnxruntime-node build lacks (dml/coreml on Linux), one whose
 * libraries are not installed (cuda/tensorrt without `npm install --onnxruntime-node-install=cuda12`) and
 * one with no device (webgpu without an adapter). The providers that passed, in the requested order, are
 * given to every session; the first of them is the one onnxruntime uses for the graph.
 */
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import type { ExecutionProvider } from '../onnx/session';

/** The probe's outcome. */
export interface ExecutionProviderReport {
  requested: ExecutionProvider[];
  /** Requested providers that work here, in the requested order (what sessions get). */
  active: ExecutionProvider[];
  /** Requested providers that do not work here, with why. */
  unavailable: Array<{ name: ExecutionProvider; reason: string }>;
  /** Backends this onnxruntime-node build knows (listSupportedBackends), with whether they ship in the package. */
  build: Array<{ name: string; bundled: boolean }>;
}

/** How to get each provider, appended to its failure. */
const HOW_TO_GET: Partial<Record<ExecutionProvider, string>> = {
  cuda: 'on a GPU host install onnxruntime-node with `npm install --onnxruntime-node-install=cuda12` (CUDA 12 + cuDNN 9 needed)',
  tensorrt: 'needs the CUDA install (`npm install --onnxruntime-node-install=cuda12`) plus TensorRT libraries on the library path',
  webgpu: 'needs a GPU adapter (Vulkan/Metal/D3D12) visible to the process',
  dml: 'DirectML exists only in the Windows build',
  coreml: 'CoreML exists only in the macOS build',
};

/** An ONNX model with one Identity node on a float32 [1] tensor. */
function identityModel(): Uint8Array {
  const { onnx } = onnxProto;
  const value = (name: string) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }] } } } });
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    producerName: 'gpu-service execution provider probe',
    graph: { name: 'probe', node: [{ opType: 'Identity', input: ['x'], output: ['y'] }], input: [value('x')], output: [value('y')] },
  }).finish();
}

/**
 * Probe each requested provider.
 * @throws Error when none of them works, naming each provider and why.
 */
export async function probeExecutionProviders(requested: ExecutionProvider[]): Promise<ExecutionProviderReport> {
  const build = ort.listSupportedBackends().map((b) => ({ name: b.name, bundled: b.bundled }));
  const model = identityModel();
  const active: ExecutionProvider[] = [];
  const unavailable: ExecutionProviderReport['unavailable'] = [];
  for (const name of requested) {
    try {
      const session = await ort.InferenceSession.create(model, { executionProviders: [name], logSeverityLevel: 4 });
      try {
        await session.run({ x: new ort.Tensor('float32', new Float32Array([1]), [1]) });
      } finally {
        await session.release();
      }
      active.push(name);
    } catch (err) {
      const known = build.some((b) => b.name === name);
      const why = known ? (err as Error).message.split('\n')[0] : `not part of this onnxruntime-node build (it has ${build.map((b) => b.name).join(', ')})`;
      unavailable.push({ name, reason: `${why}${HOW_TO_GET[name] ? ` — ${HOW_TO_GET[name]}` : ''}` });
    }
  }
  if (active.length === 0) {
    throw new Error(
      `ORT_EXECUTION_PROVIDERS=${requested.join(',')}: none can run here: ${unavailable.map((u) => `${u.name}: ${u.reason}`).join('; ')}. Add "cpu" as a fallback.`,
    );
  }
  return { requested, active, unavailable, build };
}
