import { existsSync, readFileSync } from 'node:fs';

/**
 * Read a `.dev.vars` file (wrangler's dotenv format: `NAME=value` lines, `#` comments, values optionally in
 * single or double quotes; double-quoted values understand \n and \"). A missing file reads as {}.
 * `npm start` reads it so the secrets it passes to the edge Worker (as vars overriding wrangler.toml's) are
 * the ones the developer wrote there.
 * @returns name → value, later lines winning.
 */
export function readDevVars(path: string): Record<string, string> {
  if (!existsSync(path)) return {};
  const vars: Record<string, string> = {};
  for (const rawLine of readFileSync(path, 'utf8').split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!match) continue;
    vars[match[1]] = unquote(match[2]);
  }
  return vars;
}

function unquote(value: string): string {
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
    return value.slice(1, -1).replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
  }
  if (value.length >= 2 && value.startsWith("'") && value.endsWith("'")) return value.slice(1, -1);
  return value.replace(/\s+#.*$/, '');
}

/**
 * The value of a setting for `npm start`: the environment first, then `.dev.vars`, then `fallback()`
 * (a random secret). Empty strings count as unset.
 * @returns the value and where it came from (printed for the webhook secret).
 */
export function pickSetting(
  name: string,
  env: NodeJS.ProcessEnv,
  devVars: Record<string, string>,
  fallback: () => string,
): { value: string; source: 'environment' | '.dev.vars' | 'generated' } {
  if (env[name]) return { value: env[name]!, source: 'environment' };
  if (devVars[name]) return { value: devVars[name], source: '.dev.vars' };
  return { value: fallback(), source: 'generated' };
}
