/**
 * GPU service settings from the environment, checked once at start-up (a bad setting fails at start,
 * not on the first request).
 */
import { resolve } from 'node:path';
import type { ExecutionProvider } from './onnx/session';

export interface ServiceConfig {
  /** Folder holding one sub-folder per model (diffusers/Optimum ONNX layout). */
  modelsDir: string;
  /** Bearer token every route except /healthz requires. */
  serviceToken: string;
  host: string;
  port: number;
  executionProviders: ExecutionProvider[];
  /** onnxruntime intra-op threads (0 = its default). */
  intraOpNumThreads: number;
  /** Jobs allowed to wait (not counting running ones) before POST /v1/jobs answers 503. */
  queueMax: number;
  /** Jobs running at once on this device. */
  concurrency: number;
  /** A job not started within this many seconds is dropped (0 = never). */
  startTimeoutSeconds: number;
  /** A job running longer than this in total is cancelled (0 = never). */
  jobTimeoutSeconds: number;
  /** Minimum steps between two previews. */
  previewInterval: number;
  /** Seconds a finished job's events stay readable. */
  retainSeconds: number;
}

const PROVIDERS: ExecutionProvider[] = ['cpu', 'cuda', 'tensorrt', 'webgpu', 'dml', 'coreml'];

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer ≥ ${min}, got "${raw}"`);
  return n;
}

/**
 * Read the configuration.
 * @throws Error naming the variable when a value is invalid or GPU_SERVICE_TOKEN is missing.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  const serviceToken = env.GPU_SERVICE_TOKEN ?? '';
  if (serviceToken.length < 16) throw new Error('GPU_SERVICE_TOKEN must be set to a secret of at least 16 characters');
  const providers = (env.ORT_EXECUTION_PROVIDERS ?? 'cpu').split(',').map((p) => p.trim().toLowerCase()).filter(Boolean);
  for (const p of providers) {
    if (!PROVIDERS.includes(p as ExecutionProvider)) {
      throw new Error(`ORT_EXECUTION_PROVIDERS: unknown execution provider "${p}" (accepted: ${PROVIDERS.join(', ')})`);
    }
  }
  return {
    modelsDir: resolve(env.MODELS_DIR ?? 'models'),
    serviceToken,
    host: env.GPU_HOST ?? '127.0.0.1',
    port: int(env, 'GPU_PORT', 8788, 0),
    executionProviders: providers as ExecutionProvider[],
    intraOpNumThreads: int(env, 'ORT_INTRA_OP_THREADS', 0),
    queueMax: int(env, 'QUEUE_MAX', 16, 1),
    concurrency: int(env, 'JOB_CONCURRENCY', 1, 1),
    startTimeoutSeconds: int(env, 'JOB_START_TIMEOUT', 300),
    jobTimeoutSeconds: int(env, 'JOB_TIMEOUT', 900),
    previewInterval: int(env, 'PREVIEW_INTERVAL', 1, 1),
    retainSeconds: int(env, 'JOB_RETAIN_SECONDS', 600),
  };
}
