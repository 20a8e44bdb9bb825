import { asyncTaskResult } from '../queue/async-task-result';
import type { TaskRow } from '../tasks/task-types';
import { deliverWebhook, type WebhookDeliveryOutcome } from './webhook-delivery';

/** What {@link notifyTaskEnded} needs. */
export interface TaskWebhookDeps {
  /** WEBHOOK_SIGNING_SECRET. */
  secret: string;
  /** LINK_SIGNING_SECRET and the link lifetime (seconds) for the image_url of the body. */
  linkSecret: string;
  linkTtlSeconds: number;
  /** Clock in unix ms (default Date.now). */
  now?: () => number;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * When an async task has ended (SUCCEED, FAILED or CANCELLED) and has a webhook_url, POST its
 * task-result JSON there, signed (webhook-delivery.ts; retried a few times). `X-Webhook-Id` is
 * `<task id>:<status>`: delivery is at least once (a consumer that dies after the POST but before it
 * acknowledges its message sends it again), so receivers de-duplicate on it.
 * @returns the delivery outcome, or null when there is nothing to send (no webhook, or still open).
 * Never throws (failures are logged).
 */
export async function notifyTaskEnded(row: TaskRow, deps: TaskWebhookDeps): Promise<WebhookDeliveryOutcome | null> {
  if (!row.webhook_url || row.status === 'QUEUED' || row.status === 'PROCESSING') return null;
  const now = deps.now ?? (() => Date.now());
  try {
    const payload = await asyncTaskResult(row, { secret: deps.linkSecret, ttlSeconds: deps.linkTtlSeconds, nowSeconds: now() / 1000 });
    const outcome = await deliverWebhook({
      url: row.webhook_url,
      payload,
      secret: deps.secret,
      deliveryId: `${row.id}:${payload.task.status}`,
      now,
      fetch: deps.fetch,
      sleep: deps.sleep,
    });
    if (!outcome.delivered) console.error(`task ${row.id}: webhook not delivered after ${outcome.attempts} attempts: ${outcome.error}`);
    return outcome;
  } catch (error) {
    console.error(`task ${row.id}: webhook failed`, error);
    return { delivered: false, attempts: 0, status: null, error: String(error) };
  }
}
