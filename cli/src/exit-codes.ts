/**
 * Exit codes of the `draw` CLI, fixed by the project's contracts (cli/README.md, "Exit
 * codes") so that scripts can tell a typo from an outage without parsing messages.
 */
export const EXIT_CODES = {
  /** The image was generated and saved. */
  OK: 0,
  /** Anything we did not expect: a bug in the CLI or a server answer it does not understand. */
  UNEXPECTED: 1,
  /** Bad flags or arguments, including a 400 the API blames on a field we passed from a flag. */
  USAGE: 2,
  /** No API key, or the API refused it (401/403). */
  AUTH: 3,
  /** Rate limited (429). */
  RATE_LIMITED: 4,
  /** The server failed (5xx) or could not be reached (connection refused, reset, DNS). */
  SERVER: 5,
  /** Not found (404), e.g. `model_not_found`. */
  NOT_FOUND: 6,
  /** Interrupted with Ctrl-C (128 + SIGINT, the shell convention). */
  INTERRUPTED: 130,
} as const;

/** One of the values of {@link EXIT_CODES}. */
export type ExitCode = (typeof EXIT_CODES)[keyof typeof EXIT_CODES];
