import { describe, expect, it } from 'vitest';
import { deliverWebhook } from '../../../edge/src/webhooks/webhook-delivery';
import { verifyWebhookSignature } from '../../../edge/src/webhooks/webhook-signature';

const SECRET = 'whsec-delivery';

/** A receiver that answers the given statuses in turn (a thrown Error = connection failure). */
function receiver(answers: Array<number | Error>) {
  const calls: Request[] = [];
  const fetchImpl = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    calls.push(request);
    const answer = answers[Math.min(calls.length - 1, answers.length - 1)];
    if (answer instanceof Error) throw answer;
    return new Response(answer === 204 ? null : 'ok', { status: answer, headers: answer >= 300 && answer < 400 ? { location: 'http://127.0.0.1/' } : {} });
  }) as typeof fetch;
  return { calls, fetchImpl };
}

const payload = { task: { task_id: 'task-9', status: 'TASK_STATUS_SUCCEED' } };

describe('deliverWebhook', () => {
  it('POSTs the JSON with a signature the receiver can verify', async () => {
    const { calls, fetchImpl } = receiver([204]);
    const outcome = await deliverWebhook({ url: 'https://hooks.example.com/x', payload, secret: SECRET, deliveryId: 'task-9', fetch: fetchImpl, now: () => 5_000_000, sleep: async () => {} });
    expect(outcome).toEqual({ delivered: true, attempts: 1, status: 204, error: '' });
    const request = calls[0];
    expect(request.method).toBe('POST');
    expect(request.headers.get('content-type')).toBe('application/json');
    expect(request.headers.get('x-webhook-id')).toBe('task-9');
    const body = await request.text();
    expect(JSON.parse(body)).toEqual(payload);
    const verdict = await verifyWebhookSignature({ header: request.headers.get('x-webhook-signature'), body, secret: SECRET, nowSeconds: 5000 });
    expect(verdict).toEqual({ ok: true, timestamp: 5000 });
    expect((await verifyWebhookSignature({ header: request.headers.get('x-webhook-signature'), body, secret: 'wrong', nowSeconds: 5000 })).ok).toBe(false);
  });

  it('retries connection errors and 5xx, then succeeds', async () => {
    const { calls, fetchImpl } = receiver([new TypeError('connection refused'), 503, 200]);
    const waits: number[] = [];
    const outcome = await deliverWebhook({
      url: 'https://hooks.example.com/x', payload, secret: SECRET, deliveryId: 'd', fetch: fetchImpl,
      sleep: async (ms) => void waits.push(ms),
    });
    expect(outcome.delivered).toBe(true);
    expect(outcome.attempts).toBe(3);
    expect(calls).toHaveLength(3);
    expect(waits).toEqual([1000, 5000]);
  });

  it('gives up after the last attempt and reports why', async () => {
    const { calls, fetchImpl } = receiver([500]);
    const outcome = await deliverWebhook({ url: 'https://hooks.example.com/x', payload, secret: SECRET, deliveryId: 'd', fetch: fetchImpl, sleep: async () => {}, maxAttempts: 3 });
    expect(outcome).toEqual({ delivered: false, attempts: 3, status: 500, error: 'the receiver answered 500' });
    expect(calls).toHaveLength(3);
  });

  it('does not retry a 4xx refusal and does not follow redirects', async () => {
    const refused = receiver([401]);
    expect(await deliverWebhook({ url: 'https://hooks.example.com/x', payload, secret: SECRET, deliveryId: 'd', fetch: refused.fetchImpl, sleep: async () => {} })).toMatchObject({
      delivered: false,
      attempts: 1,
      status: 401,
    });
    const redirected = receiver([302]);
    const outcome = await deliverWebhook({ url: 'https://hooks.example.com/x', payload, secret: SECRET, deliveryId: 'd', fetch: redirected.fetchImpl, sleep: async () => {} });
    expect(outcome.delivered).toBe(false);
    expect(redirected.calls.every((call) => call.url === 'https://hooks.example.com/x')).toBe(true);
    expect(redirected.calls[0].redirect).toBe('manual');
  });
});
