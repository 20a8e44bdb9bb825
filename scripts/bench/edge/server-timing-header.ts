/** Reading the edge's `Server-Timing` header (edge/src/lib/server-timing.ts writes it) on the client side. */

/** One `Server-Timing` entry: `name;dur=<ms>[;desc="…"]`. */
export interface ServerTimingEntry {
  name: string;
  /** Milliseconds; 0 when the entry has no `dur`. */
  durMs: number;
  desc?: string;
}

/**
 * Parse a `Server-Timing` header value (https://www.w3.org/TR/server-timing/) into its entries; unknown
 * parameters are ignored. Never throws (a missing header gives []).
 */
export function parseServerTiming(value: string | null): ServerTimingEntry[] {
  if (!value) return [];
  const entries: ServerTimingEntry[] = [];
  for (const item of value.split(',')) {
    const [name, ...params] = item.split(';').map((part) => part.trim());
    if (!name) continue;
    const entry: ServerTimingEntry = { name, durMs: 0 };
    for (const param of params) {
      const eq = param.indexOf('=');
      if (eq < 0) continue;
      const key = param.slice(0, eq).trim().toLowerCase();
      const raw = param.slice(eq + 1).trim();
      if (key === 'dur') entry.durMs = Number(raw) || 0;
      else if (key === 'desc') entry.desc = raw.replace(/^"(.*)"$/, '$1');
    }
    entries.push(entry);
  }
  return entries;
}
