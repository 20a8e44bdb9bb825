/** What replaces a secret in debug output. */
export const REDACTED = '***';

/**
 * Secrets shorter than this are not searched for: replacing every "k" of a one-letter test key
 * would garble the output, and such a key is never printed by the CLI in the first place.
 */
export const MIN_REDACTED_LENGTH = 6;

/** Replace every occurrence of each secret (of at least MIN_REDACTED_LENGTH chars) by REDACTED. */
export function redact(text: string, secrets: readonly string[]): string {
  let safe = text;
  for (const secret of secrets) {
    if (secret.length >= MIN_REDACTED_LENGTH) safe = safe.split(secret).join(REDACTED);
  }
  return safe;
}

/**
 * A debug logger for `-d/--debug`: writes `debug: <line>` through `write`, with every occurrence
 * of each secret (the API key, see redact) replaced by REDACTED, wherever it shows up (a server echoing it in
 * a header or an error message included). Returns a no-op when `enabled` is false.
 */
export function createDebugLog(enabled: boolean, write: (text: string) => void, secrets: string[]): (line: string) => void {
  if (!enabled) return () => {};
  return (line: string) => write(`debug: ${redact(line, secrets)}\n`);
}
