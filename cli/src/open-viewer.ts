import { spawn } from 'node:child_process';

/** How long to wait for the viewer launcher to report failure before assuming it worked. */
export const VIEWER_WAIT_MS = 3000;

/**
 * The command that opens a file with the desktop's default application:
 * `open` on macOS, `cmd /c start "" <file>` on Windows, `xdg-open` elsewhere (Linux, BSD).
 */
export function viewerCommand(filePath: string, platform: NodeJS.Platform): { command: string; args: string[] } {
  if (platform === 'darwin') return { command: 'open', args: [filePath] };
  if (platform === 'win32') return { command: 'cmd', args: ['/c', 'start', '""', filePath] };
  return { command: 'xdg-open', args: [filePath] };
}

/**
 * Open `filePath` in the default image viewer (`--show`). Never throws: a missing launcher, a
 * non-zero exit or a launcher that cannot start resolves to a warning sentence for stderr; success
 * resolves to null. Waits at most VIEWER_WAIT_MS for the launcher, then lets it run on its own.
 */
export function openInViewer(filePath: string, platform: NodeJS.Platform = process.platform): Promise<string | null> {
  const { command, args } = viewerCommand(filePath, platform);
  return new Promise((resolve) => {
    let settled = false;
    const finish = (warning: string | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(warning);
    };
    let child;
    try {
      child = spawn(command, args, { stdio: 'ignore', detached: platform !== 'win32', windowsHide: true });
    } catch (error) {
      resolve(`could not open the image with ${command}: ${(error as Error).message}`);
      return;
    }
    const timer = setTimeout(() => {
      child.unref();
      finish(null);
    }, VIEWER_WAIT_MS);
    child.on('error', (error: NodeJS.ErrnoException) =>
      finish(
        error.code === 'ENOENT'
          ? `could not open the image: ${command} is not installed; open the file yourself`
          : `could not open the image with ${command}: ${error.message}`,
      ),
    );
    child.on('exit', (code) =>
      finish(code === 0 ? null : `could not open the image: ${command} exited with code ${code}; open the file yourself`),
    );
  });
}
