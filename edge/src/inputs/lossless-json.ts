import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../env';

/** JSON.parse's reviver context (TC39 "JSON.parse source text access", in workerd's V8). */
interface ReviverContext {
  source?: string;
}

/**
 * `JSON.parse`, except that a `seed` member whose value is an integer literal above 2^53 − 1 comes back as
 * its exact decimal digits (a string) instead of a rounded number: seeds are uint64 (shared/src/seed.ts) and
 * ComfyUI clients send values up to 2^64 − 1 as plain JSON numbers. Every other value parses as usual.
 * On a runtime without reviver source access the number stays rounded, and the seed schema refuses it with
 * a 400 rather than using a different seed.
 * @throws SyntaxError for text that is not JSON.
 */
export function parseJsonKeepingSeeds(text: string): unknown {
  return JSON.parse(text, function revive(this: unknown, key: string, value: unknown, context?: ReviverContext) {
    if (key === 'seed' && typeof value === 'number' && !Number.isSafeInteger(value) && context?.source && /^[0-9]+$/.test(context.source)) {
      return context.source;
    }
    return value;
  } as (this: unknown, key: string, value: unknown) => unknown);
}

/**
 * Middleware: `c.req.json()` of this request (what zValidator('json') reads) parses with
 * {@link parseJsonKeepingSeeds}, so large seeds reach the schemas exactly.
 */
export function losslessSeeds(): MiddlewareHandler<AppEnv> {
  return async function keepSeedsExact(c, next) {
    const request = c.req;
    request.json = async <T>() => parseJsonKeepingSeeds(await request.text()) as T;
    await next();
  };
}
