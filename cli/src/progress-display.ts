import cliProgress from 'cli-progress';
import type { ProgressUpdate } from './generate-images';

/** What the draw command needs from a progress display. */
export interface ProgressDisplay {
  /** Show one progress event. */
  update(progress: ProgressUpdate): void;
  /** Remove the bar (before printing anything else, and when done). Safe to call twice. */
  stop(): void;
}

/**
 * "12s", "1m05s", "2h03m" — the ETA in the bar; "--" when the server gave none.
 * @param seconds estimated seconds left (non-negative), or null
 */
export function formatEta(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds) || seconds < 0) return '--';
  const whole = Math.round(seconds);
  if (whole < 60) return `${whole}s`;
  const pad = (value: number): string => String(value).padStart(2, '0');
  if (whole < 3600) return `${Math.floor(whole / 60)}m${pad(whole % 60)}s`;
  return `${Math.floor(whole / 3600)}h${pad(Math.floor((whole % 3600) / 60))}m`;
}

/**
 * A cli-progress bar on `stream` (stderr, so stdout keeps only the saved path):
 * `drawing [████░░░░] 12/20 steps | ETA 3s`, or `… | queued, position 2` while waiting.
 * Uses the server's `eta_seconds` rather than a local guess (the server knows its queue).
 * When `stream` is not a terminal (pipes, CI, tests) it draws nothing.
 */
export function createProgressDisplay(stream: NodeJS.WriteStream): ProgressDisplay {
  if (!stream.isTTY) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: 'drawing [{bar}] {value}/{total} steps | {status}',
      hideCursor: true,
      clearOnComplete: true,
      barsize: 30,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let stopped = false;
  return {
    update(progress) {
      if (stopped) return;
      const status =
        progress.queuePosition !== null && progress.step === 0
          ? `queued, position ${progress.queuePosition}`
          : `ETA ${formatEta(progress.etaSeconds)}`;
      const total = Math.max(progress.total, 1);
      if (!started) {
        bar.start(total, Math.min(progress.step, total), { status });
        started = true;
      } else {
        bar.setTotal(total);
        bar.update(Math.min(progress.step, total), { status });
      }
    },
    stop() {
      if (started && !stopped) bar.stop();
      stopped = true;
    },
  };
}
