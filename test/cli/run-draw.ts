import { spawn } from 'node:child_process';
import path from 'node:path';

/** The repository root (test/cli → ../..). */
export const REPO_ROOT = path.resolve(__dirname, '../..');
const TSX_CLI = path.join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');
const MAIN = path.join(REPO_ROOT, 'cli', 'src', 'main.ts');
/** The package's bin shim (package.json "bin": {"draw": …}). */
export const BIN_SHIM = path.join(REPO_ROOT, 'cli', 'bin', 'draw.js');

export interface DrawRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Run the real CLI in a child process and collect its output: by default through the bin shim
 * (`node cli/bin/draw.js …`, what `npx draw` runs: one process), or with `via: 'tsx'` as
 * `tsx cli/src/main.ts …` (what `npm run draw` runs: tsx starts a second node process, slower).
 * Asynchronous on purpose: the fake API lives in this process and must keep answering.
 * IMAGE_API_KEY / IMAGE_API_URL from the outer environment are removed so only `env` counts.
 */
export function runDraw(
  args: string[],
  options: { cwd: string; env?: Record<string, string>; via?: 'bin' | 'tsx'; timeoutMs?: number },
): Promise<DrawRun> {
  const env: Record<string, string | undefined> = { ...process.env };
  delete env.IMAGE_API_KEY;
  delete env.IMAGE_API_URL;
  Object.assign(env, options.env);
  const argv = options.via === 'tsx' ? [TSX_CLI, MAIN, ...args] : [BIN_SHIM, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, { cwd: options.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
