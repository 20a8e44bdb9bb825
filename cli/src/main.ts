/**
 * Entry point of the `draw` CLI (`npm run draw -- …`, `npx draw …`, cli/bin/draw.js).
 * Wires the real process into runCli: argv, stdout/stderr, the current folder, and Ctrl-C
 * (first press aborts the request and exits 130; a second press exits at once).
 */
import { EXIT_CODES } from './exit-codes';
import { runCli } from './run-cli';

const controller = new AbortController();
process.on('SIGINT', () => {
  if (controller.signal.aborted) process.exit(EXIT_CODES.INTERRUPTED);
  controller.abort();
});

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  cwd: process.cwd(),
  signal: controller.signal,
});
