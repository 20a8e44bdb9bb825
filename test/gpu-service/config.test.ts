/** GPU service settings: defaults, the production settings of issue 5, and start-up refusals of bad values. */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../gpu-service/src/config';

const base = { GPU_SERVICE_TOKEN: 'config-test-token-0123456789' };

describe('loadConfig', () => {
  it('has production defaults: batching on, no memory budget, huggingface.co, 30 s grace, 127.0.0.1', () => {
    expect(loadConfig(base)).toMatchObject({
      host: '127.0.0.1',
      maxBatch: 8,
      batchWindowMs: 10,
      modelMemoryBudget: 0,
      hfEndpoint: 'https://huggingface.co',
      shutdownGraceSeconds: 30,
      modelWarmUp: true,
      executionProviders: ['cpu'],
    });
  });

  it('reads every setting from the environment', () => {
    const c = loadConfig({
      ...base,
      MAX_BATCH: '1',
      BATCH_WINDOW_MS: '0',
      MODEL_MEMORY_BUDGET: '8000000000',
      HF_ENDPOINT: 'http://mirror.local:8080/',
      HF_TOKEN: 'hf_abc',
      SHUTDOWN_GRACE: '5',
      MODEL_WARMUP: 'off',
      ORT_EXECUTION_PROVIDERS: 'TensorRT, cuda ,cpu',
      GPU_HOST: '0.0.0.0',
    });
    expect(c).toMatchObject({
      maxBatch: 1,
      batchWindowMs: 0,
      modelMemoryBudget: 8_000_000_000,
      hfEndpoint: 'http://mirror.local:8080',
      hfToken: 'hf_abc',
      shutdownGraceSeconds: 5,
      modelWarmUp: false,
      executionProviders: ['tensorrt', 'cuda', 'cpu'],
      host: '0.0.0.0',
    });
  });

  it.each([
    [{ MAX_BATCH: '0' }, /MAX_BATCH must be an integer ≥ 1/],
    [{ BATCH_WINDOW_MS: '-1' }, /BATCH_WINDOW_MS/],
    [{ MODEL_MEMORY_BUDGET: '4GB' }, /MODEL_MEMORY_BUDGET must be an integer/],
    [{ HF_ENDPOINT: 'ftp://x' }, /HF_ENDPOINT must be an http\(s\) URL/],
    [{ MODEL_WARMUP: 'maybe' }, /MODEL_WARMUP/],
    [{ ORT_EXECUTION_PROVIDERS: 'cuda,openvino' }, /unknown execution provider "openvino"/],
    [{ GPU_SERVICE_TOKEN: 'short' }, /GPU_SERVICE_TOKEN/],
    [{ ORT_EXECUTION_MODE: 'async' }, /ORT_EXECUTION_MODE must be one of sequential, parallel/],
    [{ ORT_ALLOW_SPINNING: 'sometimes' }, /ORT_ALLOW_SPINNING/],
    [{ ORT_GRAPH_OPTIMIZATION: 'layout' }, /ORT_GRAPH_OPTIMIZATION must be one of basic, extended, all/],
    [{ ORT_INTER_OP_THREADS: '-2' }, /ORT_INTER_OP_THREADS must be an integer/],
    [{ GGUF_KEEP_QUANTIZED: 'q4' }, /GGUF_KEEP_QUANTIZED must be one of auto, 0, 1, got "q4"/],
  ])('refuses %o at start', (env, message) => {
    expect(() => loadConfig({ ...base, ...env })).toThrow(message);
  });

  it('onnxruntime settings: unset keeps onnxruntime defaults, set ones are passed on', () => {
    expect(loadConfig(base).ortTuning).toEqual({});
    const c = loadConfig({
      ...base,
      ORT_INTER_OP_THREADS: '2',
      ORT_EXECUTION_MODE: 'parallel',
      ORT_CPU_MEM_ARENA: '0',
      ORT_MEM_PATTERN: 'off',
      ORT_ALLOW_SPINNING: 'false',
      ORT_GRAPH_OPTIMIZATION: 'extended',
    });
    expect(c.ortTuning).toEqual({
      interOpNumThreads: 2,
      executionMode: 'parallel',
      enableCpuMemArena: false,
      enableMemPattern: false,
      allowSpinning: false,
      graphOptimizationLevel: 'extended',
    });
  });

  it('download policy: closed by default; HF_ALLOWED_REPOS, HF_MAX_MODEL_BYTES, MODELS_DIR_MAX_BYTES are read and checked', () => {
    expect(loadConfig(base).hfPolicy).toEqual({ allowedRepos: [], maxModelBytes: 0, modelsDirMaxBytes: 0 });
    const c = loadConfig({ ...base, HF_ALLOWED_REPOS: 'stabilityai/*, acme/tiny', HF_MAX_MODEL_BYTES: '8000000000', MODELS_DIR_MAX_BYTES: '200000000000' });
    expect(c.hfPolicy).toEqual({ allowedRepos: ['stabilityai/*', 'acme/tiny'], maxModelBytes: 8_000_000_000, modelsDirMaxBytes: 200_000_000_000 });
    expect(() => loadConfig({ ...base, HF_ALLOWED_REPOS: 'stabilityai' })).toThrow(/HF_ALLOWED_REPOS/);
    expect(() => loadConfig({ ...base, HF_MAX_MODEL_BYTES: '-1' })).toThrow(/HF_MAX_MODEL_BYTES/);
  });
});
