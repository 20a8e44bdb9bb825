import { readFileSync } from 'node:fs';

/** The engine version reported in every receipt: this package's version. */
export const ENGINE_VERSION: string = (() => {
  try {
    return JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version as string;
  } catch {
    return '0.0.0';
  }
})();
