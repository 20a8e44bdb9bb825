/**
 * `npm start` is safe to run next to another stack: a busy port is refused before anything starts, the
 * readiness probe only accepts this run's own children, and a child that dies after "ready" takes the stack
 * down with a message saying which.
 */
import { execFile, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/free-port';
import { startStack, type Stack } from '../helpers/stack';

const root = resolve(import.meta.dirname, '../..');
const tsx = resolve(root, 'node_modules/tsx/dist/esm/index.mjs');
const run = promisify(execFile);

/** Run scripts/start.ts to its end with `env`; resolves with its exit code and output. */
function runStart(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--import', tsx, 'scripts/start.ts'], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c) => (output += c));
    child.stderr.on('data', (c) => (output += c));
    child.once('exit', (code) => done({ code, output }));
  });
}

function listen(port: number): Promise<Server> {
  return new Promise((ok) => {
    const server = createServer();
    server.listen(port, '127.0.0.1', () => ok(server));
  });
}

describe('npm start refuses ports that are in use', () => {
  it.each(['EDGE_PORT', 'GPU_PORT'])('exits 1 naming %s when something listens there, before printing "ready"', async (name) => {
    const busy = await freePort();
    const server = await listen(busy);
    try {
      const other = name === 'EDGE_PORT' ? 'GPU_PORT' : 'EDGE_PORT';
      const { code, output } = await runStart({ [name]: String(busy), [other]: String(await freePort()), MODELS_DIR: '/nonexistent-never-generated' });
      expect(code, output).toBe(1);
      expect(output).toContain(`port ${busy} (${name}) is already in use`);
      expect(output).not.toContain('Image API ready');
    } finally {
      server.close();
    }
  }, 60_000);
});

describe('a running stack', () => {
  let stack: Stack;
  afterAll(async () => stack?.stop());

  it('survives a second npm start on its ports (its key keeps working), and exits 1 when its GPU service dies', async () => {
    stack = await startStack();
    const gpuPort = new URL(stack.gpuUrl).port;
    const edgePort = new URL(stack.baseUrl).port;
    const second = await runStart({ EDGE_PORT: edgePort, GPU_PORT: gpuPort });
    expect(second.code, second.output).toBe(1);
    expect(second.output).toMatch(/port \d+ \((EDGE|GPU)_PORT\) is already in use/);
    const models = await fetch(`${stack.baseUrl}/v1/models`, { headers: { authorization: `Bearer ${stack.apiKey}` } });
    expect(models.status).toBe(200);

    // The GPU service is a direct child of npm start running gpu-service/src/main.ts.
    const { stdout } = await run('ps', ['-o', 'pid=,args=', '--ppid', String(stack.pid)]);
    const line = stdout.split('\n').find((l) => l.includes('gpu-service/src/main.ts'));
    expect(line, stdout).toBeDefined();
    process.kill(Number(line!.trim().split(/\s+/)[0]), 'SIGKILL');
    expect(await stack.exited, stack.output()).toBe(1);
    expect(stack.output()).toMatch(/gpu-service exited \(SIGKILL\); stopping the stack/);
  }, 240_000);
});
