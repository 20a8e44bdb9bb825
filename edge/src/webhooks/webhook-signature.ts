import { constantTimeEqual, hmacSha256Hex } from '../lib/crypto';

/** Header carrying the signature of a webhook body. */
export const WEBHOOK_SIGNATURE_HEADER = 'X-Webhook-Signature';

/** How far a receiver should accept a signature's timestamp from its own clock, in seconds (replay window). */
export const WEBHOOK_TOLERANCE_SECONDS = 300;

/** The signed message: the timestamp, a dot, and the exact body bytes as sent (Stripe's scheme). */
function signedPayload(timestamp: number, body: string): string {
  return `${timestamp}.${body}`;
}

/**
 * The `X-Webhook-Signature` value for a body: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`
 * (the scheme of Stripe's `Stripe-Signature`; RFC 2104 HMAC with SHA-256). `body` must be the exact
 * string sent, since receivers sign the raw bytes they receive.
 */
export async function signWebhook(secret: string, body: string, timestampSeconds: number): Promise<string> {
  const t = Math.floor(timestampSeconds);
  return `t=${t},v1=${await hmacSha256Hex(secret, signedPayload(t, body))}`;
}

/** Outcome of {@link verifyWebhookSignature}; `reason` says why a signature was refused. */
export type WebhookVerification = { ok: true; timestamp: number } | { ok: false; reason: 'malformed' | 'mismatch' | 'expired' };

/** Options of {@link verifyWebhookSignature}. */
export interface VerifyWebhookOptions {
  /** The X-Webhook-Signature header as received (null when absent). */
  header: string | null;
  /** The raw request body as received (not re-serialised JSON). */
  body: string;
  secret: string;
  /** The receiver's clock in unix seconds. */
  nowSeconds: number;
  /** Accepted clock difference, in seconds (default WEBHOOK_TOLERANCE_SECONDS). */
  toleranceSeconds?: number;
}

/**
 * What a webhook receiver does (documented for receivers; also used by our tests): parse `t` and
 * every `v1` from the header, recompute HMAC-SHA256(secret, "<t>.<raw body>"), compare in constant
 * time, and refuse timestamps further than the tolerance from now (replays).
 * Several `v1` entries are allowed (one per secret during a rotation); any match passes.
 */
export async function verifyWebhookSignature(options: VerifyWebhookOptions): Promise<WebhookVerification> {
  if (!options.header) return { ok: false, reason: 'malformed' };
  let timestamp: number | undefined;
  const signatures: string[] = [];
  for (const part of options.header.split(',')) {
    const [name, value] = part.trim().split('=', 2);
    if (name === 't' && value !== undefined && /^\d{1,12}$/.test(value)) timestamp = Number(value);
    else if (name === 'v1' && value !== undefined && /^[0-9a-f]{64}$/.test(value)) signatures.push(value);
  }
  if (timestamp === undefined || signatures.length === 0) return { ok: false, reason: 'malformed' };
  const expected = await hmacSha256Hex(options.secret, signedPayload(timestamp, options.body));
  if (!signatures.some((signature) => constantTimeEqual(signature, expected))) return { ok: false, reason: 'mismatch' };
  const tolerance = options.toleranceSeconds ?? WEBHOOK_TOLERANCE_SECONDS;
  if (Math.abs(options.nowSeconds - timestamp) > tolerance) return { ok: false, reason: 'expired' };
  return { ok: true, timestamp };
}
