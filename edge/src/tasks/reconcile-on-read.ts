import type { EdgeBindings } from '../env';
import type { ModelCatalog } from '../gpu/model-catalog';
import { readEdgeConfig } from '../lib/edge-config';
import { settleTaskLease, stopTaskRun } from '../middleware/rate-limit';
import { asyncTaskEnv } from '../queue/async-task-record';
import { ASYNC_TASK_MAX_ATTEMPTS } from '../queue/retry-policy';
import { notifyTaskEnded } from '../webhooks/task-webhook';
import { reconcileTask, type ReconcileDeps } from './task-reconcile';
import type { TaskStore } from './task-store';
import type { TaskRow } from './task-types';

/** What {@link reconcileOnRead} needs from the request. */
export interface ReadContext {
  env: EdgeBindings;
  catalog: ModelCatalog;
  store: TaskStore;
  now: () => number;
  /** Keeps the webhook delivery running after the response (ctx.waitUntil); absent: awaited inline. */
  waitUntil?: (work: Promise<unknown>) => void;
}

/**
 * The ReconcileDeps of a read in this Worker: the GPU backend pool, R2, and for what the
 * reconciliation does to a task — an async task re-queued gets its running slot freed
 * (stopTaskRun) and a new Queue message; a task it ends gets its rate-limit lease settled (images
 * refunded unless SUCCEED) and, when it has one, its webhook.
 */
export function readReconcileDeps(context: ReadContext): ReconcileDeps {
  const { env, store, now } = context;
  const asyncEnv = asyncTaskEnv(env);
  const config = readEdgeConfig(env);
  return {
    store,
    gpu: context.catalog.backendPool(config),
    bucket: env.IMAGES,
    now,
    maxAttempts: ASYNC_TASK_MAX_ATTEMPTS,
    requeued: async (row) => {
      await stopTaskRun(env, row);
      await asyncEnv.ASYNC_TASKS.send({ task_id: row.id });
    },
    ended: async (row) => {
      await settleTaskLease(env, row);
      if (!row.webhook_url || !asyncEnv.WEBHOOK_SIGNING_SECRET) return;
      const delivery = notifyTaskEnded(row, {
        secret: asyncEnv.WEBHOOK_SIGNING_SECRET,
        linkSecret: config.linkSigningSecret,
        linkTtlSeconds: config.linkTtlSeconds,
        now,
      });
      if (context.waitUntil) context.waitUntil(delivery);
      else await delivery;
    },
  };
}

/** Reconcile `row` if its lease has lapsed (task-reconcile.ts), wired for this Worker; returns the row as it is now. */
export function reconcileOnRead(context: ReadContext, row: TaskRow): Promise<TaskRow> {
  return reconcileTask(readReconcileDeps(context), row);
}
