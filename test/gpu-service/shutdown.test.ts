/**
 * Graceful shutdown of the real process: `npm run gpu-service` in a child process, a job running, SIGTERM.
 * While draining, new jobs get 503 shutting_down and /readyz is 503; the running job finishes (or, past
 * SHUTDOWN_GRACE, ends cancelled with shutting_down); then the process exits 0.
 *
 * SIGTERM goes to npm alone (as `docker stop` or `kill <pid>` would send it). npm forwards it to the script's
 * shell; a POSIX sh that runs `tsx …` as a child (dash) dies without passing it on, which would orphan the
 * service, so the test runs the script with bash (npm's script-shell setting), which execs the one command:
 * npm → node (with tsx's loader) → the service. The script must not use the tsx CLI: its signal relay
 * SIGKILLs a child that does not acknowledge the signal within 30 ms, which a busy service under load misses.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/free-port';
import { tinyModelsDir } from '../helpers/tiny-model';
import { streamJob } from './sse-client';

const TOKEN = 'shutdown-test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
const root = resolve(import.meta.dirname, '../..');
const children: ChildProcess[] = [];

/** Signal every process of the child's group (npm, sh, tsx, the service). */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // already gone
  }
}

afterEach(() => {
  for (const c of children.splice(0)) signalGroup(c, 'SIGKILL');
});

interface Service {
  base: string;
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** Start `npm run gpu-service` and wait for /healthz. */
async function startService(env: Record<string, string>): Promise<Service> {
  const port = await freePort();
  let output = '';
  const child = spawn('npm', ['run', '--silent', 'gpu-service'], {
    cwd: root,
    env: {
      ...process.env,
      npm_config_script_shell: '/bin/bash',
      GPU_PORT: String(port),
      GPU_SERVICE_TOKEN: TOKEN,
      MODELS_DIR: await tinyModelsDir(),
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  children.push(child);
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the service exited early:\n${output}`);
    try {
      if ((await fetch(`${base}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`the service did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { base, child, output: () => output, exited };
}

const job = (id: string, over: Record<string, unknown> = {}) => ({
  id,
  model: 'tiny-analytic',
  prompt: 'a blue sky',
  width: 1024,
  height: 1024,
  seed: 9,
  steps: 200,
  sampler: 'heun',
  ...over,
});

describe('SIGTERM', () => {
  it('refuses new work, lets the running job finish, then exits 0', async () => {
    const svc = await startService({ SHUTDOWN_GRACE: '60' });
    const stream = await streamJob(svc.base, TOKEN, job('drain-1'));
    await stream.until((evs) => evs.some((e) => e.event === 'step'));
    svc.child.kill('SIGTERM');
    // Draining: the service still answers, but takes no new job and is not ready.
    const deadline = Date.now() + 10_000;
    while (!svc.output().includes('shutting down: draining jobs')) {
      if (Date.now() > deadline) throw new Error(`no drain log:\n${svc.output()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const refused = await fetch(`${svc.base}/v1/jobs`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify(job('late', { steps: 2, width: 64, height: 64 })),
    });
    expect(refused.status).toBe(503);
    expect((await refused.json()).error.code).toBe('shutting_down');
    const ready = await fetch(`${svc.base}/readyz`, { headers: auth });
    expect(ready.status).toBe(503);
    expect((await ready.json()).error.code).toBe('shutting_down');
    const final = await stream.final();
    expect(final.event, JSON.stringify(final).slice(0, 300)).toBe('done');
    expect(final.data.result.images).toHaveLength(1);
    expect(await svc.exited, svc.output()).toBe(0);
    expect(svc.output()).toMatch(/jobs drained/);
  }, 60_000);

  it('cancels what is left after SHUTDOWN_GRACE seconds, then exits 0', async () => {
    const svc = await startService({ SHUTDOWN_GRACE: '1' });
    // Far longer than the grace period (4 images of 1024², 200 Heun steps: several seconds even on a fast machine).
    const stream = await streamJob(svc.base, TOKEN, job('grace-1', { batch_size: 4 }));
    await stream.until((evs) => evs.some((e) => e.event === 'step'));
    const t0 = Date.now();
    svc.child.kill('SIGTERM');
    const final = await stream.final();
    expect(final.event).toBe('error');
    expect(final.data.error.code).toBe('shutting_down');
    expect(await svc.exited, svc.output()).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    const steps = (await stream.all()).filter((e) => e.event === 'step').length;
    expect(steps).toBeLessThan(200);
  }, 60_000);
});
