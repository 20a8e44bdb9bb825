import { signWebhook, WEBHOOK_SIGNATURE_HEADER } from './webhook-signature';

/** Delivery attempts per webhook (the first try plus retries). */
export const WEBHOOK_MAX_ATTEMPTS = 4;
/** Wait before retry i (1-based), in milliseconds: 1 s, 5 s, 25 s. */
export const WEBHOOK_RETRY_DELAYS_MS: readonly number[] = [1_000, 5_000, 25_000];
/** Time one attempt may take (connect + response), in milliseconds. */
export const WEBHOOK_ATTEMPT_TIMEOUT_MS = 10_000;

/** Options of {@link deliverWebhook}. */
export interface DeliverWebhookOptions {
  /** Target, already checked by checkWebhookUrl at submit time. */
  url: string;
  /** The JSON body to POST (serialised once; the signature covers exactly these bytes). */
  payload: unknown;
  /** WEBHOOK_SIGNING_SECRET. */
  secret: string;
  /** Sent as X-Webhook-Id so receivers can de-duplicate (delivery is at least once). */
  deliveryId: string;
  /** Clock in unix milliseconds (default Date.now). */
  now?: () => number;
  /** fetch to use (default: the global one, looked up at call time). */
  fetch?: typeof fetch;
  /** Sleep between attempts (tests pass a no-op). */
  sleep?: (ms: number) => Promise<void>;
  maxAttempts?: number;
}

/** What happened to one webhook. */
export interface WebhookDeliveryOutcome {
  delivered: boolean;
  attempts: number;
  /** Last HTTP status seen (null: no response). */
  status: number | null;
  /** Why the last attempt failed ("" when delivered). */
  error: string;
}

/** Statuses worth another attempt: timeouts, throttling and server errors. Other 4xx are final. */
function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

/**
 * POST `payload` as JSON to `url` with `X-Webhook-Signature: t=<unix>,v1=<hmac>` (webhook-signature.ts),
 * `X-Webhook-Id` and `User-Agent: image-api-webhooks/1`. A 2xx is success. Network errors, timeouts,
 * 408/425/429 and 5xx are retried up to `maxAttempts` in total after WEBHOOK_RETRY_DELAYS_MS, each
 * attempt freshly signed (a new timestamp); other statuses end the delivery. Redirects are not followed
 * (a 3xx is a failure), so a public URL cannot bounce the request to a private address.
 * Never throws: the outcome is returned (and logged by the caller).
 */
export async function deliverWebhook(options: DeliverWebhookOptions): Promise<WebhookDeliveryOutcome> {
  const now = options.now ?? (() => Date.now());
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const maxAttempts = options.maxAttempts ?? WEBHOOK_MAX_ATTEMPTS;
  const body = JSON.stringify(options.payload);
  let status: number | null = null;
  let error = '';
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    if (attempt > 1) await sleep(WEBHOOK_RETRY_DELAYS_MS[Math.min(attempt - 2, WEBHOOK_RETRY_DELAYS_MS.length - 1)]);
    try {
      const response = await (options.fetch ?? fetch)(options.url, {
        method: 'POST',
        redirect: 'manual',
        signal: AbortSignal.timeout(WEBHOOK_ATTEMPT_TIMEOUT_MS),
        headers: {
          'content-type': 'application/json',
          'user-agent': 'image-api-webhooks/1',
          'x-webhook-id': options.deliveryId,
          [WEBHOOK_SIGNATURE_HEADER]: await signWebhook(options.secret, body, now() / 1000),
        },
        body,
      });
      status = response.status;
      // Drain the body so the connection can be reused; its content does not matter.
      await response.body?.cancel();
      if (status >= 200 && status < 300) return { delivered: true, attempts: attempt, status, error: '' };
      error = `the receiver answered ${status}`;
      if (!isRetryableStatus(status)) return { delivered: false, attempts: attempt, status, error };
    } catch (cause) {
      status = null;
      error = cause instanceof Error ? cause.message : String(cause);
    }
  }
  return { delivered: false, attempts: maxAttempts, status, error };
}
