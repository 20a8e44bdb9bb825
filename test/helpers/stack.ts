/**
 * Starts the real local stack exactly as `npm start` does (scripts/start.ts: GPU service + wrangler dev),
 * on free ports with a temporary state folder and a fixed development key, for end-to-end tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../../scripts/free-port';
import { tinyModelsDir } from './tiny-model';

export interface Stack {
  baseUrl: string;
  apiKey: string;
  gpuUrl: string;
  serviceToken: string;
  /** Everything the stack printed (stdout + stderr), for failure messages. */
  output(): string;
  /** The `npm start` process (scripts/start.ts); its children are the GPU service and wrangler. */
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
