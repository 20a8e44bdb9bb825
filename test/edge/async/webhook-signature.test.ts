import { describe, expect, it } from 'vitest';
import { hmacSha256Hex } from '../../../edge/src/lib/crypto';
import { signWebhook, verifyWebhookSignature } from '../../../edge/src/webhooks/webhook-signature';

const SECRET = 'whsec-test';
const BODY = '{"task":{"task_id":"t-1","status":"TASK_STATUS_SUCCEED"}}';

describe('webhook signatures', () => {
  it('is t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>', async () => {
    const header = await signWebhook(SECRET, BODY, 1_700_000_000.9);
    expect(header).toBe(`t=1700000000,v1=${await hmacSha256Hex(SECRET, `1700000000.${BODY}`)}`);
    // An independent HMAC (Web Crypto directly) agrees, so the format is what receivers compute.
    const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(SECRET), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(`1700000000.${BODY}`)));
    expect(header.split('v1=')[1]).toBe(Array.from(mac, (b) => b.toString(16).padStart(2, '0')).join(''));
  });

  it('verifies a correct signature', async () => {
    const header = await signWebhook(SECRET, BODY, 1000);
    expect(await verifyWebhookSignature({ header, body: BODY, secret: SECRET, nowSeconds: 1010 })).toEqual({ ok: true, timestamp: 1000 });
  });

  it('refuses a wrong secret, a changed body or a changed timestamp', async () => {
    const header = await signWebhook(SECRET, BODY, 1000);
    expect(await verifyWebhookSignature({ header, body: BODY, secret: 'other', nowSeconds: 1000 })).toEqual({ ok: false, reason: 'mismatch' });
    expect(await verifyWebhookSignature({ header, body: BODY.replace('SUCCEED', 'FAILED'), secret: SECRET, nowSeconds: 1000 })).toEqual({
      ok: false,
      reason: 'mismatch',
    });
    const moved = header.replace('t=1000', 't=1001');
    expect(await verifyWebhookSignature({ header: moved, body: BODY, secret: SECRET, nowSeconds: 1000 })).toEqual({ ok: false, reason: 'mismatch' });
  });

  it('refuses an old signature (replay) and a missing or malformed header', async () => {
    const header = await signWebhook(SECRET, BODY, 1000);
    expect(await verifyWebhookSignature({ header, body: BODY, secret: SECRET, nowSeconds: 1000 + 301 })).toEqual({ ok: false, reason: 'expired' });
    expect(await verifyWebhookSignature({ header: null, body: BODY, secret: SECRET, nowSeconds: 1000 })).toEqual({ ok: false, reason: 'malformed' });
    expect(await verifyWebhookSignature({ header: 'v1=abc', body: BODY, secret: SECRET, nowSeconds: 1000 })).toEqual({ ok: false, reason: 'malformed' });
  });

  it('accepts any of several v1 entries (secret rotation)', async () => {
    const header = await signWebhook(SECRET, BODY, 1000);
    const rotated = `t=1000,v1=${'0'.repeat(64)},${header.split(',')[1]}`;
    expect((await verifyWebhookSignature({ header: rotated, body: BODY, secret: SECRET, nowSeconds: 1000 })).ok).toBe(true);
  });
});
