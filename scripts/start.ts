/**
 * `npm start`: the whole local stack on the embedded default model.
 *  1. refuse to start (exit 1, naming the port) when EDGE_PORT or GPU_PORT is already in use;
 *  2. generate the analytic tiny model into MODELS_DIR when it is missing, and the post-processing test stand-ins
 *     (matting/test-matting-gbr.onnx, upscale_models/test-upscale-x4-nearest.onnx) beside it when they are;
 *  3. start the GPU service (CPU execution provider) on GPU_PORT;
 *  4. install the development API key into the Worker's local KV (never revoking another key);
 *  5. start the edge Worker under Miniflare (scripts/start/edge-worker.ts: local KV/R2/D1/Durable Objects/Queues) on EDGE_PORT;
 *  6. once both answer as *these* children (the GPU service accepts this run's token, the Worker echoes this
 *     run's instance id), print the base URL, the development key and the webhook secret;
 *  7. stop both cleanly on Ctrl-C / SIGTERM, and exit 1 saying which when a child dies on its own.
 * Environment: EDGE_PORT (8787), GPU_PORT (8788), DEV_API_KEY (generated when unset), MODELS_DIR (./models),
 * STATE_DIR (.wrangler/state: local KV/R2/D1/Queues storage). GPU_SERVICE_TOKEN, LINK_SIGNING_SECRET and
 * WEBHOOK_SIGNING_SECRET come from the environment, else `.dev.vars`, else are random per run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { generateTinyModel } from './tiny-model/generate';
import { buildPostprocessStandIns, generatePostprocessStandIns } from './tiny-model/postprocess-models';
import { installDevKey } from './start/dev-key';
import { pickSetting, readDevVars } from './start/dev-vars';
import { portsInUse } from './start/ports';

const root = resolve(import.meta.dirname, '..');
const env = process.env;
const edgePort = Number(env.EDGE_PORT ?? 8787);
const gpuPort = Number(env.GPU_PORT ?? 8788);
const modelsDir = resolve(env.MODELS_DIR ?? resolve(root, 'models'));
const stateDir = resolve(env.STATE_DIR ?? resolve(root, '.wrangler/state'));
const devVars = readDevVars(resolve(root, '.dev.vars'));
const randomHex = (bytes: number) => () => randomBytes(bytes).toString('hex');
const serviceToken = pickSetting('GPU_SERVICE_TOKEN', env, devVars, randomHex(24)).value;
const linkSecret = pickSetting('LINK_SIGNING_SECRET', env, devVars, randomHex(32)).value;
const webhookSecret = pickSetting('WEBHOOK_SIGNING_SECRET', env, devVars, randomHex(32));
const devKey = env.DEV_API_KEY || `sk-dev-${randomBytes(18).toString('hex')}`;
// Echoed by the Worker's /healthz, so the readiness probe knows it reached this run's Worker.
const instanceId = randomBytes(12).toString('hex');
const children: Array<{ name: string; child: ChildProcess }> = [];

function log(msg: string): void {
  process.stderr.write(`[start] ${msg}\n`);
}

/**
 * Poll `url` until `accept(response)` says it is this run's child answering.
 * @throws when the child exits first or nothing acceptable answers within the timeout.
 */
async function waitFor(
  url: string,
  child: ChildProcess,
  what: string,
  accept: (res: Response) => Promise<boolean>,
  init: RequestInit = {},
  timeoutMs = 120_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let answered = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before it was ready`);
    }
    try {
      const res = await fetch(url, init);
      if (await accept(res)) return;
      answered = ` (last answer: HTTP ${res.status}, not from this run's ${what})`;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} was not ready at ${url} within ${timeoutMs / 1000} s${answered}`);
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
  // A child that dies on its own takes the stack down: a half stack would fail every request.
  child.once('exit', (code, signal) => {
    if (stopping) return;
    log(`${name} exited (${code ?? signal}); stopping the stack`);
    void stop(1);
  });
  children.push({ name, child });
  return child;
}

let stopping = false;
async function stop(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    for (const { child: c } of children) {
      if (c.exitCode === null && c.signalCode === null && c.pid) {
        try {
          process.kill(-c.pid, 'SIGTERM');
        } catch {
          // already gone
        }
      }
    }
    await Promise.all(
      children.map(
        ({ child: c }) =>
          new Promise<void>((r) => {
            if (c.exitCode !== null || c.signalCode !== null) return r();
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
  const busy = await portsInUse({ EDGE_PORT: edgePort, GPU_PORT: gpuPort });
  if (busy) throw new Error(busy);
  if (!existsSync(resolve(modelsDir, 'tiny-analytic', 'model_index.json'))) {
    log(`generating the analytic tiny model into ${modelsDir}/tiny-analytic`);
    await generateTinyModel(resolve(modelsDir, 'tiny-analytic'));
  }
  if ([...buildPostprocessStandIns().keys()].some((rel) => !existsSync(resolve(modelsDir, rel)))) {
    log(`writing the post-processing test stand-ins into ${modelsDir} (matting/, upscale_models/)`);
    await generatePostprocessStandIns(modelsDir);
  }
  const tsx = resolve(root, 'node_modules/tsx/dist/esm/index.mjs');
  const gpu = launch('gpu-service', process.execPath, ['--import', tsx, 'gpu-service/src/main.ts'], {
    GPU_PORT: String(gpuPort),
    GPU_SERVICE_TOKEN: serviceToken,
    MODELS_DIR: modelsDir,
    LOG_LEVEL: env.LOG_LEVEL ?? 'warn',
  });
  // /metrics needs the service token: only the GPU service started with this run's token answers 200.
  await waitFor(`http://127.0.0.1:${gpuPort}/metrics`, gpu, 'GPU service', async (res) => res.status === 200, {
    headers: { authorization: `Bearer ${serviceToken}` },
  });
  await installDevKey(devKey, { persistTo: stateDir });
  const vars = {
    GPU_SERVICE_URL: `http://127.0.0.1:${gpuPort}`,
    GPU_SERVICE_TOKEN: serviceToken,
    LINK_SIGNING_SECRET: linkSecret,
    WEBHOOK_SIGNING_SECRET: webhookSecret.value,
    ALLOW_LOCAL_WEBHOOK_URLS: 'true',
    STACK_INSTANCE_ID: instanceId,
  };
  // Miniflare directly, not `wrangler dev` (scripts/start/edge-worker.ts says why).
  const edge = launch('edge', process.execPath, ['--import', tsx, 'scripts/start/edge-worker.ts'], {
    EDGE_PORT: String(edgePort),
    STATE_DIR: stateDir,
    EDGE_VARS: JSON.stringify(vars),
  });
  await waitFor(`http://127.0.0.1:${edgePort}/healthz`, edge, 'edge Worker', async (res) => {
    if (res.status !== 200) return false;
    const body = (await res.json().catch(() => ({}))) as { instance_id?: string };
    return body.instance_id === instanceId;
  });
  const base = `http://127.0.0.1:${edgePort}`;
  const secretSource = { environment: 'from WEBHOOK_SIGNING_SECRET', '.dev.vars': 'from .dev.vars', generated: 'random for this run; set WEBHOOK_SIGNING_SECRET to keep one' }[webhookSecret.source];
  process.stdout.write(
    [
      `Image API ready at ${base}`,
      `Development API key: ${devKey}`,
      `Webhook signing secret: ${webhookSecret.value} (${secretSource})`,
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
