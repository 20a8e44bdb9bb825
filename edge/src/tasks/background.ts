import type { Context } from 'hono';

/**
 * Keep `work` running after the response is sent or the client disconnects (Workers'
 * `ctx.waitUntil`), so a generation that was started always reaches its task row. Without an
 * ExecutionContext (an app called directly with `app.request` in tests) the promise simply runs
 * on. Rejections are the work's own business: attach handlers before passing it.
 * Note: deployed Workers give waitUntil work about 30 s after the client has gone; longer jobs
 * whose clients leave early should use the async API (Queue consumer), which has no such limit.
 */
export function keepRunning(c: Context, work: Promise<unknown>): void {
  let ctx: ExecutionContext | undefined;
  try {
    ctx = c.executionCtx as ExecutionContext;
  } catch {
    return; // no ExecutionContext: nothing cancels the promise anyway
  }
  ctx.waitUntil(work);
}
