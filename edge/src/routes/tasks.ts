import { Hono, type Context } from 'hono';
import type { AppEnv } from '../env';
import type { ModelCatalog } from '../gpu/model-catalog';
import { ApiError, invalidParameter } from '../lib/api-error';
import { readEdgeConfig, resolveLinkTtl } from '../lib/edge-config';
import { settleTaskLease } from '../middleware/rate-limit';
import { keepRunning } from '../tasks/background';
import { reconcileOnRead, type ReadContext } from '../tasks/reconcile-on-read';
import { SseWriter, SSE_HEADERS } from '../tasks/sse-writer';
import { relayTaskEvents } from '../tasks/task-event-relay';
import { FINAL_EVENT_ID, taskJson, type LinkSigning } from '../tasks/task-json';
import { DEFAULT_TASK_LIST_LIMIT, MAX_TASK_LIST_LIMIT, TaskStore } from '../tasks/task-store';
import { isFinalStatus, type TaskError, type TaskOwner, type TaskRow } from '../tasks/task-types';

/** Dependencies shared by the route factories (see app.ts). */
export interface RouteOptions {
  catalog: ModelCatalog;
  /** Clock in unix milliseconds (tests may pin it). */
  now?: () => number;
}

/** The error a cancelled task ends with. */
export const CANCELLED_BY_CLIENT: TaskError = {
  code: 'task_cancelled',
  message: 'The task was cancelled by the client.',
  param: null,
  type: 'invalid_request_error',
};

/** 404 for a task that does not exist or belongs to another key (indistinguishable on purpose). */
function taskNotFound(id: string): ApiError {
  return new ApiError(404, 'not_found_error', 'task_not_found', `No task "${id}" for this API key.`, 'id');
}

/**
 * The task routes, for every API style's tasks (the caller's own only: another key's task is 404):
 * - GET    /v1/tasks?limit=N        → {object: "list", data: [task]} newest first (N 1..100, default 20)
 *                                     — finds the task of a sync request whose answer was lost;
 * Answers with links accept `?link_ttl_seconds=N` (lifetime within LINK_TTL_MAX_SECONDS).
 * Every read reconciles a task whose runner died (task-lease.ts, task-reconcile.ts) before answering,
 * so no task stays QUEUED/PROCESSING after its edge went away.
 * - GET    /v1/tasks/:id            → the task (tasks/task-json.ts: status, progress_percent,
 *                                     eta_seconds, reason, error, data [{url, seed}], receipt, usage);
 * - GET    /v1/tasks/:id/events     → resumable SSE (tasks/task-event-relay.ts): task.queued,
 *                                     task.started, task.progress, task.preview, then task.completed
 *                                     or task.failed (id "final"). Last-Event-ID resumes; after the
 *                                     final event it answers 204 (EventSource stops reconnecting);
 * - DELETE /v1/tasks/:id            → cancels a QUEUED/PROCESSING task (the GPU service's job too):
 *                                     200 with the task, now CANCELLED; 409 `task_not_cancellable`
 *                                     when it had already ended.
 */
export function tasksRoutes(options: RouteOptions): Hono<AppEnv> {
  const now = options.now ?? (() => Date.now());
  const routes = new Hono<AppEnv>();

  const ownerOf = (c: Context<AppEnv>): TaskOwner => {
    const apiKey = c.get('apiKey');
    return { tenant: apiKey.tenant, key_hash: apiKey.key_hash };
  };
  // Links in answers live LINK_TTL_SECONDS, or `?link_ttl_seconds=` within LINK_TTL_MAX_SECONDS.
  const signingOf = (c: Context<AppEnv>): (() => LinkSigning) => {
    const config = readEdgeConfig(c.env);
    const ttlSeconds = resolveLinkTtl(c.req.query('link_ttl_seconds'), config);
    const origin = new URL(c.req.url).origin;
    return () => ({ origin, secret: config.linkSigningSecret, ttlSeconds, nowSeconds: now() / 1000 });
  };
  const readContext = (c: Context<AppEnv>, store: TaskStore): ReadContext => ({
    env: c.env,
    catalog: options.catalog,
    store,
    now,
    waitUntil: waitUntilOf(c),
  });
  /** The caller's task; a task whose runner died is reconciled first (task-reconcile.ts). */
  const find = async (c: Context<AppEnv>, store: TaskStore): Promise<TaskRow> => {
    const id = c.req.param('id') ?? '';
    const row = await store.get(id, ownerOf(c));
    if (!row) throw taskNotFound(id);
    return reconcileOnRead(readContext(c, store), row);
  };

  routes.get('/', async (c) => {
    const limitText = c.req.query('limit');
    const limit = limitText === undefined ? DEFAULT_TASK_LIST_LIMIT : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_TASK_LIST_LIMIT) {
      throw invalidParameter('limit', `limit must be an integer from 1 to ${MAX_TASK_LIST_LIMIT}.`);
    }
    const store = new TaskStore(c.env.DB, { now });
    const context = readContext(c, store);
    const rows = await Promise.all((await store.list(ownerOf(c), limit)).map((row) => reconcileOnRead(context, row)));
    const signing = signingOf(c)();
    return c.json({ object: 'list', data: await Promise.all(rows.map((row) => taskJson(row, signing))) });
  });

  routes.get('/:id', async (c) => {
    const row = await find(c, new TaskStore(c.env.DB, { now }));
    return c.json(await taskJson(row, signingOf(c)()));
  });

  routes.get('/:id/events', async (c) => {
    const store = new TaskStore(c.env.DB, { now });
    const task = await find(c, store);
    const lastEventId = c.req.header('last-event-id')?.trim() || undefined;
    // Nothing after the final event: 204 tells EventSource to stop reconnecting.
    if (isFinalStatus(task.status) && lastEventId === FINAL_EVENT_ID) return c.body(null, 204);
    const config = readEdgeConfig(c.env);
    const signing = signingOf(c);
    const writer = new SseWriter();
    const relay = relayTaskEvents(writer, {
      store,
      gpu: options.catalog.backendPool(config),
      owner: ownerOf(c),
      task,
      lastEventId,
      signing,
      now,
      reconcile: (row) => reconcileOnRead(readContext(c, store), row),
    });
    keepRunning(c, relay);
    return c.body(writer.readable, 200, { ...SSE_HEADERS, 'x-task-id': task.id });
  });

  routes.delete('/:id', async (c) => {
    const store = new TaskStore(c.env.DB, { now });
    const task = await find(c, store);
    if (isFinalStatus(task.status)) throw notCancellable(task);
    if (task.backend) {
      try {
        await options.catalog.backendPool(readEdgeConfig(c.env)).cancelJob(task.id, { backendUrl: task.backend });
      } catch (error) {
        // The row is cancelled anyway: a runner that still finishes finds it ended and drops its images.
        console.error(`task ${task.id}: cancelling the GPU job failed`, error);
      }
    }
    if (!(await store.cancel(task.id, CANCELLED_BY_CLIENT))) {
      const ended = await find(c, store);
      if (ended.status !== 'CANCELLED') throw notCancellable(ended);
    }
    const cancelled = await find(c, store);
    // A cancelled task made no images: its images per day are refunded (a runner still settling it is harmless).
    await settleTaskLease(c.env, cancelled);
    return c.json(await taskJson(cancelled, signingOf(c)()));
  });

  return routes;
}

function notCancellable(task: TaskRow): ApiError {
  return new ApiError(409, 'invalid_request_error', 'task_not_cancellable', `The task has already ended (${task.status}).`, 'id');
}

/** ctx.waitUntil of the request, when it has an ExecutionContext (app.request in tests has none). */
function waitUntilOf(c: Context<AppEnv>): ((work: Promise<unknown>) => void) | undefined {
  try {
    const ctx = c.executionCtx;
    return (work) => ctx.waitUntil(work);
  } catch {
    return undefined;
  }
}
