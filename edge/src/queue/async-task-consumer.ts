import type { GenerationJobInput } from '@image-api/shared/generation-job';
import { publicImageParam, type PublicImageParams } from '../inputs/input-errors';
import type { EdgeBindings } from '../env';
import type { ModelCatalog } from '../gpu/model-catalog';
import { encodeBase64 } from '../lib/base64';
import { readEdgeConfig } from '../lib/edge-config';
import { runGeneration } from '../tasks/run-generation';
import { ASYNC_ADDON_STYLE, publicAddonParam } from '../addons/request-addons';
import { TaskStore } from '../tasks/task-store';
import { isFinalStatus, type TaskRow } from '../tasks/task-types';
import { notifyTaskEnded } from '../webhooks/task-webhook';
import { AsyncTaskMessageSchema, AsyncTaskRecordSchema, asyncTaskEnv, type AsyncTaskEnv } from './async-task-record';
import { ASYNC_TASK_MAX_ATTEMPTS, classifyFailure, retryDelaySeconds } from './retry-policy';
import { settleTaskLease, startTaskRun, stopTaskRun } from '../middleware/rate-limit';
import { claimTask } from './task-lease';

/**
 * Deliveries of one message Queues makes at most: wrangler.toml `max_retries` + 1. The consumer
 * treats its last delivery as final itself, so Queues never silently drops a message of an open task.
 */
export const ASYNC_MESSAGE_MAX_DELIVERIES = 10;
/** Wait before looking again at a task another consumer is running (seconds). */
export const ASYNC_BUSY_RECHECK_SECONDS = 60;
/** Shortest wait before a task held back by its key's concurrency limit is looked at again (seconds). */
export const ASYNC_CONCURRENCY_WAIT_SECONDS = 1;
/** Longest a single attempt may run (Queue consumers may run 15 minutes of wall time). */
export const ASYNC_JOB_TIMEOUT_MS = 14 * 60_000;

/** Options of {@link asyncTaskConsumer}. */
export interface AsyncTaskConsumerOptions {
  /** The isolate's model catalog: its GPU backend pool (health marks, failover) is shared with the routes. */
  catalog: ModelCatalog;
  /** Clock in unix ms (default Date.now, looked up per call). */
  now?: () => number;
  /** fetch for webhook deliveries (default global fetch). */
  webhookFetch?: typeof fetch;
  /** Sleep between webhook attempts (tests pass a no-op). */
  sleep?: (ms: number) => Promise<void>;
}

/** The Worker's `queue` handler type for the async task queue. */
export type AsyncTaskQueueHandler = (batch: MessageBatch<unknown>, env: EdgeBindings, ctx: ExecutionContext) => Promise<void>;

/**
 * The Queue consumer of /v3/async/* tasks (wrangler.toml [[queues.consumers]]). Messages of a batch
 * run concurrently; each ends in exactly one ack or retry:
 * 1. load the task (unknown id or malformed message: ack and log). An ended task is acked after its
 *    webhook is (re)sent — a message is only redelivered when the previous run did not acknowledge it.
 * 2. take a running slot of the key (startTaskRun: its concurrency limit counts sync and async jobs
 *    alike); over the limit, the task stays QUEUED and a fresh message looks at it again in
 *    ASYNC_CONCURRENCY_WAIT_SECONDS (waiting spends none of the message's deliveries).
 * 3. claim it (task-lease.ts): QUEUED → PROCESSING, or take over a stale PROCESSING row. A task another
 *    consumer is running is looked at again in ASYNC_BUSY_RECHECK_SECONDS.
 * 4. rebuild the GenerationJob from the row (inputs from R2) and run it through THE runner
 *    (tasks/run-generation.ts, which holds the task's lease) with a deadline (ASYNC_JOB_TIMEOUT_MS).
 * 5. on failure: transient errors (retry-policy.ts: backend unreachable, 503, stream lost, storage,
 *    unexpected) put the task back to QUEUED and retry the message after an exponential backoff that
 *    honours Retry-After; a GPU 4xx, or the last attempt (ASYNC_TASK_MAX_ATTEMPTS submissions or the
 *    last delivery), ends it FAILED with the reason.
 *    A re-queued task gives its running slot back (stopTaskRun) while it waits.
 * 6. when the task has ended: settle its rate-limit lease (images per day refunded unless it
 *    SUCCEEDed, as for sync requests), POST the signed webhook (if any), then ack.
 * Anything unexpected (D1 down) retries the message; the stale rule (task-lease.ts) recovers a task
 * whose consumer died mid-run.
 */
export function asyncTaskConsumer(options: AsyncTaskConsumerOptions): AsyncTaskQueueHandler {
  const now = () => (options.now ?? Date.now)();
  return async function consumeAsyncTasks(batch, env) {
    await Promise.all(
      batch.messages.map(async (message) => {
        try {
          await processMessage(message, asyncTaskEnv(env), options, now);
        } catch (error) {
          console.error('async task message failed unexpectedly; retrying it', error);
          message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
        }
      }),
    );
  };
}

async function processMessage(message: Message<unknown>, env: AsyncTaskEnv, options: AsyncTaskConsumerOptions, now: () => number): Promise<void> {
  const parsed = AsyncTaskMessageSchema.safeParse(message.body);
  if (!parsed.success) {
    console.error('async task queue: dropping a malformed message', message.body);
    message.ack();
    return;
  }
  const id = parsed.data.task_id;
  const store = new TaskStore(env.DB, { now });
  const row = await store.load(id);
  if (!row) {
    console.error(`async task queue: task ${id} does not exist; dropping its message`);
    message.ack();
    return;
  }
  const lastDelivery = message.attempts >= ASYNC_MESSAGE_MAX_DELIVERIES;
  if (isFinalStatus(row.status)) {
    await settleTaskLease(env, row);
    await notify(row, env, options, now);
    message.ack();
    return;
  }
  // The key's concurrency limit bounds running jobs of every style: over it, the task waits in the
  // Queue (a fresh message, so waiting uses up none of the message's deliveries).
  const turn = await startTaskRun(env, row);
  if (!turn.allowed) {
    // Refreshed while it waits, so a read does not take its message for lost (tasks/task-lease.ts).
    await store.touch(id);
    await env.ASYNC_TASKS.send({ task_id: id }, { delaySeconds: Math.max(ASYNC_CONCURRENCY_WAIT_SECONDS, turn.retry_after_seconds) });
    message.ack();
    return;
  }
  if (!(await claimTask(env.DB, id, now()))) {
    // Another consumer is running it (duplicate delivery). If that one dies, the stale rule recovers the task.
    if (turn.started) await stopTaskRun(env, row);
    if (lastDelivery) message.ack();
    else message.retry({ delaySeconds: ASYNC_BUSY_RECHECK_SECONDS });
    return;
  }

  const claimed = (await store.load(id)) ?? row;
  const attempt = claimed.attempts + 1;
  const lastAttempt = lastDelivery || attempt >= ASYNC_TASK_MAX_ATTEMPTS;
  let retryAfterSeconds: number | undefined;
  const job = await rebuildJob(claimed, env);
  if ('error' in job) {
    await store.fail(id, { code: 'invalid_task', message: job.error, param: null, type: 'server_error' });
  } else {
    const config = readEdgeConfig(env);
    try {
      await runGeneration(
        { store, gpu: options.catalog.backendPool(config), bucket: env.IMAGES, now },
        {
          task: claimed,
          job: job.job,
          metadata: { api: 'v3-async', task_type: job.taskType },
          isFinalFailure: (error) => lastAttempt || !classifyFailure(error).transient,
          signal: AbortSignal.timeout(ASYNC_JOB_TIMEOUT_MS),
          publicParam: (param) => publicAddonParam(publicImageParam(param, job.imageParams), ASYNC_ADDON_STYLE),
        },
      );
    } catch (error) {
      const failure = classifyFailure(error);
      retryAfterSeconds = failure.retryAfterSeconds;
      console.error(`task ${id}: attempt ${attempt} failed (${failure.transient && !lastAttempt ? 'will retry' : 'final'}): ${failure.reason}`);
    }
  }

  const after = await store.load(id);
  if (!after || isFinalStatus(after.status)) {
    if (after) {
      await settleTaskLease(env, after);
      await notify(after, env, options, now);
    }
    message.ack();
    return;
  }
  // Re-queued by the runner after a transient failure (or its failure could not be recorded: the
  // row is still PROCESSING and will be claimable once stale).
  if (lastDelivery) {
    await store.fail(id, { code: 'task_failed', message: after.reason ?? 'The task kept failing.', param: null, type: 'server_error' });
    const failed = await store.load(id);
    if (failed) {
      await settleTaskLease(env, failed);
      await notify(failed, env, options, now);
    }
    message.ack();
    return;
  }
  // Waiting for the next attempt is not running: the key's running slot is free meanwhile.
  await stopTaskRun(env, after);
  message.retry({ delaySeconds: retryDelaySeconds(attempt, retryAfterSeconds) });
}

/** The task's GenerationJob with its R2 inputs inlined as base64, or why it cannot be rebuilt. */
async function rebuildJob(row: TaskRow, env: AsyncTaskEnv): Promise<{ job: GenerationJobInput; taskType: string; imageParams: PublicImageParams } | { error: string }> {
  const record = AsyncTaskRecordSchema.safeParse(row.request);
  if (!record.success) return { error: 'The stored task is not an async generation task.' };
  const job: GenerationJobInput = { ...record.data.job };
  for (const field of ['init_image', 'mask'] as const) {
    const key = record.data.inputs[field];
    if (key === undefined) continue;
    const object = await env.IMAGES.get(key);
    if (!object) return { error: `The task's input image (${field}) is no longer stored.` };
    job[field] = encodeBase64(new Uint8Array(await object.arrayBuffer()));
  }
  // The submit kept request.image_url / mask_image_url when sent (the base64 fields are dropped): the field behind each input.
  const sent = record.data.request;
  const imageParams: PublicImageParams = {
    init_image: sent.image_url !== undefined ? 'request.image_url' : 'request.image_base64',
    mask: sent.mask_image_url !== undefined ? 'request.mask_image_url' : 'request.mask_image_base64',
  };
  return { job, taskType: record.data.task_type, imageParams };
}

/** Send the task's webhook when it has one and WEBHOOK_SIGNING_SECRET is set. */
async function notify(row: TaskRow, env: AsyncTaskEnv, options: AsyncTaskConsumerOptions, now: () => number): Promise<void> {
  if (!row.webhook_url) return;
  if (!env.WEBHOOK_SIGNING_SECRET) {
    console.error(`task ${row.id}: has a webhook but WEBHOOK_SIGNING_SECRET is not set; not sending it`);
    return;
  }
  const config = readEdgeConfig(env);
  await notifyTaskEnded(row, {
    secret: env.WEBHOOK_SIGNING_SECRET,
    linkSecret: config.linkSigningSecret,
    linkTtlSeconds: config.linkTtlSeconds,
    now,
    fetch: options.webhookFetch,
    sleep: options.sleep,
  });
}
