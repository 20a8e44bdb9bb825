/**
 * Starts the real local stack exactly as `npm start` does (scripts/start.ts: GPU service + the edge Worker under Miniflare),
 * on free ports with a temporary state folder and a fixed development key, for end-to-end tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { newApiKeyRecord, type ApiKeyLimits, type ApiKeyRecord } from '@image-api/shared/api/api-key';
import { freePort } from '../../scripts/free-port';
import { tinyModelsDir } from './tiny-model';

export interface Stack {
  baseUrl: string;
  apiKey: string;
  gpuUrl: string;
  serviceToken: string;
  /** The stack's STATE_DIR (local KV/R2/D1/Durable Objects of the edge, in `wrangler dev --persist-to` layout): `npm run keys -- --persist-to` it to add keys. */
  stateDir: string;
  /** Everything the stack printed (stdout + stderr), for failure messages. */
  output(): string;
  /** The `npm start` process (scripts/start.ts); its children are the GPU service and the edge (scripts/start/edge-worker.ts). */
  pid: number;
  /** Resolves with the exit code of `npm start` once it exits. */
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

const root = resolve(import.meta.dirname, '../..');

/** Options of startStack. */
export interface StackOptions {
  /** MODELS_DIR for the GPU service (default: a folder with the tiny model). */
  modelsDir?: string;
}

/** Start the stack; resolves once it printed "Image API ready". */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const [edgePort, gpuPort] = [await freePort(), await freePort()];
  const apiKey = `sk-test-${Math.random().toString(36).slice(2)}${Date.now()}`;
  const serviceToken = `svc-${Math.random().toString(36).slice(2)}-token-long-enough`;
  const stateDir = await mkdtemp(join(tmpdir(), 'stack-state-'));
  let log = '';
  const child: ChildProcess = spawn(process.execPath, ['--import', resolve(root, 'node_modules/tsx/dist/esm/index.mjs'), 'scripts/start.ts'], {
    cwd: root,
    env: {
      ...process.env,
      EDGE_PORT: String(edgePort),
      GPU_PORT: String(gpuPort),
      DEV_API_KEY: apiKey,
      GPU_SERVICE_TOKEN: serviceToken,
      MODELS_DIR: options.modelsDir ?? (await tinyModelsDir()),
      STATE_DIR: stateDir,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  child.stdout!.on('data', (c) => (log += c));
  child.stderr!.on('data', (c) => (log += c));
  await new Promise<void>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`stack not ready in 150 s:\n${log}`)), 150_000);
    const check = () => {
      if (log.includes('Image API ready at')) {
        clearTimeout(timer);
        ok();
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`npm start exited with ${code}:\n${log}`));
    });
  });
  return {
    baseUrl: `http://127.0.0.1:${edgePort}`,
    gpuUrl: `http://127.0.0.1:${gpuPort}`,
    apiKey,
    serviceToken,
    stateDir,
    output: () => log,
    pid: child.pid!,
    exited,
    stop: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null) return done();
        child.once('exit', () => done());
        child.kill('SIGTERM');
      }),
  };
}

/** Options of {@link startSplitStack}. */
export interface SplitStackOptions extends StackOptions {
  /** More API keys to install, by name, with their limits; their keys are in {@link SplitStack.keys}. */
  keys?: Record<string, ApiKeyLimits>;
  /** Extra Worker vars (e.g. TASK_STALE_AFTER_SECONDS). */
  vars?: Record<string, string>;
}

/**
 * A local stack whose two processes the test controls one by one: the GPU service and the edge
 * (Miniflare, scripts/start/edge-worker.ts) are started as scripts/start.ts starts them, but directly, so one can be killed
 * and started again while the other runs on (start.ts takes the whole stack down when a child dies).
 * The edge keeps its state folder across restarts (D1 task rows, KV keys, R2 images, Durable Objects).
 */
export interface SplitStack {
  baseUrl: string;
  gpuUrl: string;
  serviceToken: string;
  /** The key without limits. */
  apiKey: string;
  /** Keys of {@link SplitStackOptions.keys}, by name. */
  keys: Record<string, string>;
  output(): string;
  /** SIGKILL the GPU service (no drain: as a crash or an OOM kill) and wait until it is gone. */
  killGpu(): Promise<void>;
  /** Start the GPU service again on the same port; resolves once it answers with the token. */
  startGpu(): Promise<void>;
  /**
   * SIGSTOP / SIGCONT the GPU service's process group: a paused service holds its running job mid-step
   * and accepts connections (the kernel queues them) without answering, so a test can catch a job while
   * it runs however fast the machine is.
   */
  pauseGpu(): void;
  resumeGpu(): void;
  /** SIGKILL the edge (its Node process and workerd) and start it again on the same port and state. */
  restartEdge(): Promise<void>;
  /** SIGKILL the edge and wait until it is gone; {@link startEdge} brings it back on the same port and state. */
  killEdge(): Promise<void>;
  /** Start the edge again after {@link killEdge}; resolves once this new instance answers /healthz. */
  startEdge(): Promise<void>;
  stop(): Promise<void>;
}

/** Start a {@link SplitStack}; resolves once both processes answer. */
export async function startSplitStack(options: SplitStackOptions = {}): Promise<SplitStack> {
  const [edgePort, gpuPort] = [await freePort(), await freePort()];
  const serviceToken = `svc-${randomBytes(12).toString('hex')}-token`;
  const stateDir = await mkdtemp(join(tmpdir(), 'split-stack-state-'));
  const modelsDir = options.modelsDir ?? (await tinyModelsDir());
  const tsx = resolve(root, 'node_modules/tsx/dist/esm/index.mjs');
  const wrangler = resolve(root, 'node_modules/wrangler/bin/wrangler.js');
  let log = '';
  const keys: Record<string, string> = {};
  const records: ApiKeyRecord[] = [];
  for (const [name, limits] of Object.entries({ dev: {}, ...options.keys })) {
    keys[name] = `sk-split-${name}-${randomBytes(16).toString('hex')}`;
    records.push(await newApiKeyRecord(keys[name], { name, tenant: `t-${name}`, limits }));
  }
  // One `wrangler kv bulk put` for every key (one wrangler start instead of one per key).
  const bulkFile = join(stateDir, 'keys.json');
  await writeFile(bulkFile, JSON.stringify(records.map((r) => ({ key: r.key_hash, value: JSON.stringify(r), metadata: { name: r.name, tenant: r.tenant } }))));
  await new Promise<void>((ok, fail) => {
    const put = spawn(process.execPath, [wrangler, 'kv', 'bulk', 'put', bulkFile, '--binding', 'API_KEYS', '--local', '--persist-to', stateDir], {
      cwd: root,
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    put.stdout!.on('data', (c) => (out += c));
    put.stderr!.on('data', (c) => (out += c));
    put.once('exit', (code) => (code === 0 ? ok() : fail(new Error(`wrangler kv bulk put failed (${code}):\n${out}`))));
  });

  const launch = (name: string, args: string[], env: Record<string, string>): ChildProcess => {
    const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const note = (chunk: Buffer) => (log += chunk.toString().replace(/^(?=.)/gm, `[${name}] `));
    child.stdout!.on('data', note);
    child.stderr!.on('data', note);
    return child;
  };
  const gone = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;
  const waitFor = async (url: string, child: ChildProcess, accept: (res: Response) => Promise<boolean>, init: RequestInit = {}) => {
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      if (gone(child)) throw new Error(`${url}: the process exited (${child.exitCode ?? child.signalCode}):\n${log}`);
      try {
        if (await accept(await fetch(url, init))) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${url} was not ready in 120 s:\n${log}`);
  };
  const killGroup = async (child: ChildProcess) => {
    if (gone(child)) return;
    const exited = new Promise((r) => child.once('exit', r));
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
    await exited;
  };

  let gpu!: ChildProcess;
  const startGpu = async () => {
    gpu = launch('gpu-service', ['--import', tsx, 'gpu-service/src/main.ts'], {
      GPU_PORT: String(gpuPort),
      GPU_SERVICE_TOKEN: serviceToken,
      MODELS_DIR: modelsDir,
      LOG_LEVEL: 'warn',
    });
    await waitFor(`http://127.0.0.1:${gpuPort}/metrics`, gpu, async (res) => res.status === 200, { headers: { authorization: `Bearer ${serviceToken}` } });
  };
  let edge!: ChildProcess;
  const startEdge = async () => {
    const instanceId = randomBytes(8).toString('hex');
    const vars = {
      GPU_SERVICE_URL: `http://127.0.0.1:${gpuPort}`,
      GPU_SERVICE_TOKEN: serviceToken,
      LINK_SIGNING_SECRET: 'split-stack-link-secret',
      WEBHOOK_SIGNING_SECRET: 'split-stack-webhook-secret',
      ALLOW_LOCAL_WEBHOOK_URLS: 'true',
      STACK_INSTANCE_ID: instanceId,
      ...options.vars,
    };
    // As scripts/start.ts starts it: the Worker under Miniflare (scripts/start/edge-worker.ts).
    edge = launch('edge', ['--import', tsx, 'scripts/start/edge-worker.ts'], {
      EDGE_PORT: String(edgePort),
      STATE_DIR: stateDir,
      EDGE_VARS: JSON.stringify(vars),
    });
    await waitFor(`http://127.0.0.1:${edgePort}/healthz`, edge, async (res) => {
      const body = (await res.json().catch(() => ({}))) as { instance_id?: string };
      return res.status === 200 && body.instance_id === instanceId;
    });
  };
  try {
    await Promise.all([startGpu(), startEdge()]);
  } catch (error) {
    await Promise.all([gpu, edge].filter(Boolean).map(killGroup));
    throw error;
  }
  return {
    baseUrl: `http://127.0.0.1:${edgePort}`,
    gpuUrl: `http://127.0.0.1:${gpuPort}`,
    serviceToken,
    apiKey: keys.dev,
    keys,
    output: () => log,
    killGpu: () => killGroup(gpu),
    startGpu,
    pauseGpu: () => process.kill(-gpu.pid!, 'SIGSTOP'),
    resumeGpu: () => process.kill(-gpu.pid!, 'SIGCONT'),
    killEdge: () => killGroup(edge),
    startEdge,
    restartEdge: async () => {
      await killGroup(edge);
      await startEdge();
    },
    stop: async () => {
      await Promise.all([killGroup(gpu), killGroup(edge)]);
    },
  };
}
