import { EXIT_CODES, type ExitCode } from './exit-codes';

/**
 * A mistake the user can fix: a bad flag, a missing key, an output folder that does not exist.
 * Following workers-sdk's `UserError` habit, the message says what is wrong and `hint` says how
 * to fix it; the CLI prints `error: <message>` then `hint` on the next line, and exits with
 * `exitCode` (2 = usage by default, 3 for a missing API key).
 */
export class UserError extends Error {
  /** The exit code the CLI ends with (see EXIT_CODES). */
  readonly exitCode: ExitCode;
  /** One sentence telling the user how to solve it, or undefined when the message already does. */
  readonly hint: string | undefined;

  constructor(message: string, options: { hint?: string; exitCode?: ExitCode } = {}) {
    super(message);
    this.name = 'UserError';
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? EXIT_CODES.USAGE;
  }
}
