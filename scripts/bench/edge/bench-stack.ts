/**
 * The local stack for the edge section, started exactly as `npm start` starts it (scripts/start.ts: the GPU
 * service, the development key, `wrangler dev` with local KV/R2/D1/Durable Objects) on free ports, a
 * temporary state folder and the bench's own models folder; plus a second key with (generous) limits, so
 * the rate-limit admission of a limited key is measured too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ApiKeyLimits } from '@image-api/shared/api/api-key';
import { freePort } from '../../free-port';
import { createKey } from '../../keys';

const root = path.resolve(import.meta.dirname, '../../..');

/**
 * Limits of the bench's limited key: far above what the bench sends (so nothing is refused), but each kind
 * present, so every request goes through the RateLimiter Durable Object.
 */
export const BENCH_KEY_LIMITS: ApiKeyLimits = { rpm: 1_000_000, concurrency: 64, images_per_day: 10_000_000, compute_units_per_minute: 1_000_000 };

/** A running bench stack. */
export interface BenchStack {
  edgeUrl: string;
  gpuUrl: string;
  serviceToken: string;
  /** The development key (no limits: no rate-limit call). */
  devKey: string;
  /** A key with {@link BENCH_KEY_LIMITS}. */
  limitedKey: string;
  stop(): Promise<void>;
}

/**
 * Start the stack on `modelsDir` (which must hold tiny-analytic); resolves once `npm start` printed
 * "Image API ready" and the limited key is installed.
 * @throws Error with the stack's output when it does not come up within 150 s or exits.
 */
export async function startBenchStack(modelsDir: string, log: (line: string) => void): Promise<BenchStack> {
  const [edgePort, gpuPort] = [await freePort(), await freePort()];
  const devKey = `sk-bench-${randomBytes(16).toString('hex')}`;
  const serviceToken = `svc-bench-${randomBytes(16).toString('hex')}`;
  const stateDir = await mkdtemp(path.join(tmpdir(), 'bench-edge-state-'));
  let output = '';
  const child: ChildProcess = spawn(process.execPath, ['--import', path.join(root, 'node_modules/tsx/dist/esm/index.mjs'), 'scripts/start.ts'], {
    cwd: root,
    env: { ...process.env, EDGE_PORT: String(edgePort), GPU_PORT: String(gpuPort), DEV_API_KEY: devKey, GPU_SERVICE_TOKEN: serviceToken, MODELS_DIR: modelsDir, STATE_DIR: stateDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((done) => child.once('exit', done));
      child.kill('SIGTERM');
      await exited;
    }
    await rm(stateDir, { recursive: true, force: true });
  };
  try {
    log(`edge: starting the local stack (npm start) on ports ${edgePort} (edge) and ${gpuPort} (GPU service), state in ${stateDir} (TMPDIR)`);
    await new Promise<void>((ready, fail) => {
      const timer = setTimeout(() => fail(new Error(`the stack was not ready in 150 s:\n${output}`)), 150_000);
      child.stdout!.on('data', () => {
        if (output.includes('Image API ready at')) {
          clearTimeout(timer);
          ready();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        fail(new Error(`npm start exited with ${code}:\n${output}`));
      });
    });
    const limitedKey = `sk-bench-limited-${randomBytes(16).toString('hex')}`;
    await createKey({ name: 'bench-limited', key: limitedKey, tenant: 'bench', limits: BENCH_KEY_LIMITS, persistTo: stateDir });
    return { edgeUrl: `http://127.0.0.1:${edgePort}`, gpuUrl: `http://127.0.0.1:${gpuPort}`, serviceToken, devKey, limitedKey, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
