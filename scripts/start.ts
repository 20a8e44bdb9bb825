/**
 * `npm start`: the whole local stack on the embedded default model.
 *  1. generate the analytic tiny model into MODELS_DIR when it is missing;
 *  2. start the GPU service (CPU execution provider) on GPU_PORT;
 *  3. install the development API key into the Worker's local KV;
 *  4. start the edge Worker under `wrangler dev` (local R2/KV) on EDGE_PORT;
 *  5. print the base URL and the development key; stop both cleanly on Ctrl-C / SIGTERM.
 * Environment: EDGE_PORT (8787), GPU_PORT (8788), DEV_API_KEY (generated when unset), MODELS_DIR (./models),
 * STATE_DIR (.wrangler/state: local KV/R2/D1/Queues storage), GPU_SERVICE_TOKEN, LINK_SIGNING_SECRET and
 * WEBHOOK_SIGNING_SECRET (random per run when unset).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { generateTinyModel } from './tiny-model/generate';
import { createKey } from './keys';
import { freePort } from './free-port';

const root = resolve(import.meta.dirname, '..');
const env = process.env;
const edgePort = Number(env.EDGE_PORT ?? 8787);
const gpuPort = Number(env.GPU_PORT ?? 8788);
const modelsDir = resolve(env.MODELS_DIR ?? resolve(root, 'models'));
const stateDir = resolve(env.STATE_DIR ?? resolve(root, '.wrangler/state'));
const serviceToken = env.GPU_SERVICE_TOKEN ?? randomBytes(24).toString('hex');
const linkSecret = env.LINK_SIGNING_SECRET ?? randomBytes(32).toString('hex');
const webhookSecret = env.WEBHOOK_SIGNING_SECRET ?? randomBytes(32).toString('hex');
const devKey = env.DEV_API_KEY ?? `sk-dev-${randomBytes(18).toString('hex')}`;
const children: ChildProcess[] = [];

function log(msg: string): void {
  process.stderr.write(`[start] ${msg}\n`);
}

async function waitFor(url: string, child: ChildProcess, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with code ${child.exitCode} before it was ready`);
    try {
      const res = await fetch(url);
      if (res.status < 500) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} was not ready at ${url} within ${timeoutMs / 1000} s`);
}

function launch(name: string, command: string, args: string[], extraEnv: Record<string, string>): ChildProcess {
  const child = spawn(command, args, { cwd: root, env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const prefix = (chunk: Buffer) =>
    chunk
      .toString()
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => `[${name}] ${l}\n`)
      .join('');
  child.stdout!.on('data', (c: Buffer) => process.stderr.write(prefix(c)));
  child.stderr!.on('data', (c: Buffer) => process.stderr.write(prefix(c)));
  children.push(child);
  return child;
}

let stopping = false;
async function stop(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    for (const c of children) {
      if (c.exitCode === null && c.pid) {
        try {
          process.kill(-c.pid, 'SIGTERM');
        } catch {
          // already gone
        }
      }
    }
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((r) => {
            if (c.exitCode !== null) return r();
            const t = setTimeout(() => {
              try {
                process.kill(-c.pid!, 'SIGKILL');
              } catch {
                // gone
              }
              r();
            }, 5000);
            c.once('exit', () => {
              clearTimeout(t);
              r();
            });
          }),
      ),
    );
  }
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

try {
  if (!existsSync(resolve(modelsDir, 'tiny-analytic', 'model_index.json'))) {
    log(`generating the analytic tiny model into ${modelsDir}/tiny-analytic`);
    await generateTinyModel(resolve(modelsDir, 'tiny-analytic'));
  }
  const tsx = resolve(root, 'node_modules/tsx/dist/esm/index.mjs');
  const gpu = launch('gpu-service', process.execPath, ['--import', tsx, 'gpu-service/src/main.ts'], {
    GPU_PORT: String(gpuPort),
    GPU_SERVICE_TOKEN: serviceToken,
    MODELS_DIR: modelsDir,
    LOG_LEVEL: env.LOG_LEVEL ?? 'warn',
  });
  await waitFor(`http://127.0.0.1:${gpuPort}/healthz`, gpu, 'the GPU service');
  await createKey({ name: 'dev', key: devKey, persistTo: stateDir });
  const wrangler = resolve(root, 'node_modules/wrangler/bin/wrangler.js');
  const edge = launch(
    'edge',
    process.execPath,
    [
      wrangler,
      'dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(edgePort),
      '--inspector-port',
      String(await freePort()),
      '--persist-to',
      stateDir,
      '--var',
      `GPU_SERVICE_URL:http://127.0.0.1:${gpuPort}`,
      '--var',
      `GPU_SERVICE_TOKEN:${serviceToken}`,
      '--var',
      `LINK_SIGNING_SECRET:${linkSecret}`,
      '--var',
      `WEBHOOK_SIGNING_SECRET:${webhookSecret}`,
      '--show-interactive-dev-session=false',
    ],
    // No network here: no metrics, and no fetch of Cloudflare's Request.cf sample (miniflare's placeholder is used).
    { WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', CI: 'true' },
  );
  await waitFor(`http://127.0.0.1:${edgePort}/v1/models`, edge, 'the edge Worker');
  const base = `http://127.0.0.1:${edgePort}`;
  process.stdout.write(
    [
      `Image API ready at ${base}`,
      `Development API key: ${devKey}`,
      '',
      'Try it:',
      `  curl -s ${base}/v1/images/generations -H "Authorization: Bearer ${devKey}" -H "Content-Type: application/json" \\`,
      `    -d '{"prompt": "a red apple", "response_format": "url"}'`,
      '',
      'Press Ctrl-C to stop.',
      '',
    ].join('\n'),
  );
} catch (err) {
  log(`failed: ${(err as Error).message}`);
  await stop(1);
}
