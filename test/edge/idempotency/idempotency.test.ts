import { env, exports } from 'cloudflare:workers';
import { Hono } from 'hono';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { newApiKeyRecord } from '@image-api/shared/api/api-key';
import type { ErrorBody } from '@image-api/shared/errors';
import type { AppEnv } from '../../../edge/src/env';
import { IDEMPOTENCY_RUNNING_MS, IDEMPOTENCY_TTL_MS } from '../../../edge/src/idempotency/idempotency-ledger';
import { idempotency, IDEMPOTENCY_R2_PREFIX } from '../../../edge/src/idempotency/idempotency-middleware';
import { requestFingerprint } from '../../../edge/src/idempotency/request-fingerprint';
import { auth } from '../../../edge/src/middleware/auth';
import { errorHandler } from '../../../edge/src/middleware/error-handler';
import { fakeBackends } from '../backends/fake-backends';

let counter = 0;

/** A stored key; returns the Bearer value. */
async function newKey(tenant = 'tenant-idem'): Promise<string> {
  const key = `sk-idem-${++counter}-${crypto.randomUUID()}`;
  const record = await newApiKeyRecord(key, { name: `idem-${counter}`, tenant });
  await env.API_KEYS.put(record.key_hash, JSON.stringify(record));
  return key;
}

/**
 * A stand-in generation route behind auth + idempotency that counts its runs. `?status=` picks the
 * answer's status, `?stream=1` answers an event stream, `gate` holds runs until opened.
 */
function countingApp(clock: { now: number } | null = null) {
  const runs: unknown[] = [];
  let gate: Promise<void> | null = null;
  const app = new Hono<AppEnv>();
  app.onError(errorHandler());
  app.use('/gen', auth());
  app.use('/gen', idempotency(clock ? { now: () => clock.now } : {}));
  app.on(['POST', 'GET'], '/gen', async (c) => {
    const type = c.req.header('content-type') ?? '';
    const body = type.startsWith('multipart/') ? Object.fromEntries((await c.req.formData()).entries()) : await c.req.text();
    runs.push(body);
    const n = runs.length;
    if (gate) await gate;
    const status = Number(c.req.query('status') ?? 200);
    if (c.req.query('stream') === '1') {
      const encoder = new TextEncoder();
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(encoder.encode(`event: progress\ndata: {"run":${n}}\n\n`));
          controller.enqueue(encoder.encode(`event: completed\ndata: {"run":${n}}\n\n`));
          controller.close();
        },
      });
      return new Response(stream, { headers: { 'content-type': 'text/event-stream', 'x-task-id': `task-${n}` } });
    }
    c.header('x-task-id', `task-${n}`);
    c.header('x-ratelimit-remaining', String(100 - n));
    return c.json({ run: n, created: 1_700_000_000 + n }, status as 200);
  });
  const hold = () => {
    let open!: () => void;
    gate = new Promise<void>((resolve) => (open = resolve));
    return () => {
      gate = null;
      open();
    };
  };
  const call = (key: string, init: { idem?: string; body?: BodyInit; type?: string; query?: string; method?: string } = {}) => {
    const headers: Record<string, string> = { authorization: `Bearer ${key}` };
    if (init.idem !== undefined) headers['idempotency-key'] = init.idem;
    if (init.type) headers['content-type'] = init.type;
    else if (typeof init.body === 'string' || init.body === undefined) headers['content-type'] = 'application/json';
    const method = init.method ?? 'POST';
    const body = method === 'GET' ? undefined : (init.body ?? '{"prompt":"a red apple","n":1}');
    return app.request(`/gen${init.query ?? ''}`, { method, headers, body }, env);
  };
  return { runs, call, hold };
}

async function waitUntil(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('Idempotency-Key middleware', () => {
  it('a retried POST with the same key returns the first response (status, headers, body) without running again', async () => {
    const { runs, call } = countingApp();
    const key = await newKey();
    const first = await call(key, { idem: 'retry-1' });
    expect(first.status).toBe(200);
    const firstBody = await first.text();
    expect(first.headers.get('idempotent-replayed')).toBeNull();

    const again = await call(key, { idem: 'retry-1' });
    expect(again.status).toBe(200);
    expect(await again.text()).toBe(firstBody);
    expect(again.headers.get('x-task-id')).toBe(first.headers.get('x-task-id'));
    expect(again.headers.get('content-type')).toBe(first.headers.get('content-type'));
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.headers.get('x-ratelimit-remaining')).toBeNull(); // describes a response, not the result
    expect(runs).toHaveLength(1);
  });

  it('the same key with a different body, path or method is a 422 idempotency_key_reused', async () => {
    const { runs, call } = countingApp();
    const key = await newKey();
    expect((await call(key, { idem: 'reuse-1' })).status).toBe(200);
    const other = await call(key, { idem: 'reuse-1', body: '{"prompt":"a green pear","n":1}' });
    expect(other.status).toBe(422);
    const body = (await other.json()) as ErrorBody;
    expect(body.error).toMatchObject({ code: 'idempotency_key_reused', type: 'invalid_request_error', param: 'Idempotency-Key' });
    expect((await call(key, { idem: 'reuse-1', query: '?status=201' })).status).toBe(422);
    expect(runs).toHaveLength(1);
  });

  it('JSON key order and whitespace do not make a different request', async () => {
    const { runs, call } = countingApp();
    const key = await newKey();
    await call(key, { idem: 'order-1', body: '{"prompt":"a red apple","n":2,"size":"64x64"}' });
    const again = await call(key, { idem: 'order-1', body: '{ "size": "64x64",\n "n": 2, "prompt": "a red apple" }' });
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(runs).toHaveLength(1);
  });

  it('multipart forms match by content, not by their random boundary', async () => {
    const { runs, call } = countingApp();
    const key = await newKey();
    const form = (prompt: string) => {
      const data = new FormData();
      data.append('prompt', prompt);
      data.append('image', new File([new Uint8Array([137, 80, 78, 71, 1, 2, 3])], 'in.png', { type: 'image/png' }));
      return new Request('https://x.test/', { method: 'POST', body: data });
    };
    const send = async (prompt: string) => {
      const request = form(prompt);
      return call(key, { idem: 'form-1', body: await request.arrayBuffer(), type: request.headers.get('content-type')! });
    };
    expect((await send('paint it red')).status).toBe(200);
    const again = await send('paint it red');
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(runs).toHaveLength(1);
    expect((await send('paint it blue')).status).toBe(422);
  });

  it('a retry while the first is still running gets 409 with Retry-After; of 10 simultaneous requests one runs', async () => {
    const { runs, call, hold } = countingApp();
    const key = await newKey();
    const open = hold();
    const pending = Array.from({ length: 10 }, () => call(key, { idem: 'race-1' }));
    await waitUntil(() => runs.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    open();
    const responses = await Promise.all(pending);
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses).toEqual([200, ...Array(9).fill(409)]);
    const busy = responses.find((r) => r.status === 409)!;
    expect(busy.headers.get('retry-after')).toBe('1');
    expect(((await busy.json()) as ErrorBody).error.code).toBe('idempotency_key_in_use');
    expect(runs).toHaveLength(1);
    // Once it finished, the same request replays the result.
    expect((await call(key, { idem: 'race-1' })).headers.get('idempotent-replayed')).toBe('true');
  });

  it('a 5xx or 429 is not kept: the retry runs again; a 4xx is kept', async () => {
    const { runs, call } = countingApp();
    const key = await newKey();
    expect((await call(key, { idem: 'fail-1', query: '?status=503' })).status).toBe(503);
    expect((await call(key, { idem: 'fail-1', query: '?status=503' })).status).toBe(503);
    expect(runs).toHaveLength(2);
    expect((await call(key, { idem: 'fail-2', query: '?status=429' })).status).toBe(429);
    expect((await call(key, { idem: 'fail-2', query: '?status=429' })).headers.get('idempotent-replayed')).toBeNull();
    expect(runs).toHaveLength(4);
    expect((await call(key, { idem: 'fail-3', query: '?status=400' })).status).toBe(400);
    const kept = await call(key, { idem: 'fail-3', query: '?status=400' });
    expect(kept.status).toBe(400);
    expect(kept.headers.get('idempotent-replayed')).toBe('true');
    expect(runs).toHaveLength(5);
  });

  it('keys are per API key: another key with the same Idempotency-Key runs its own request', async () => {
    const { runs, call } = countingApp();
    const a = await newKey('tenant-a');
    const b = await newKey('tenant-b');
    const first = (await (await call(a, { idem: 'shared-1' })).json()) as { run: number };
    const second = (await (await call(b, { idem: 'shared-1' })).json()) as { run: number };
    expect(second.run).not.toBe(first.run);
    expect(runs).toHaveLength(2);
  });

  it('an event stream is stored when it ends and replayed whole', async () => {
    const { runs, call } = countingApp();
    const key = await newKey();
    const first = await call(key, { idem: 'stream-1', query: '?stream=1' });
    const text = await first.text();
    expect(text).toContain('event: completed');
    let again: Response;
    // Stored after the stream ended (in the background): poll until the replay is there.
    for (let i = 0; ; i++) {
      again = await call(key, { idem: 'stream-1', query: '?stream=1' });
      if (again.status === 200) break;
      expect(again.status).toBe(409);
      if (i > 100) throw new Error('stream never stored');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.headers.get('content-type')).toBe('text/event-stream');
    expect(await again.text()).toBe(text);
    expect(runs).toHaveLength(1);
  });

  it('entries expire after 24 h (the request runs again, the old body is deleted); a crashed holder frees the key after 15 min', async () => {
    const clock = { now: Date.parse('2026-03-10T12:00:00Z') };
    const { runs, call, hold } = countingApp(clock);
    const key = await newKey();
    const stored = async () => (await env.IMAGES.list({ prefix: IDEMPOTENCY_R2_PREFIX })).objects.map((o) => o.key);
    const before = await stored();
    await call(key, { idem: 'old-1' });
    const [oldBody] = (await stored()).filter((k) => !before.includes(k));
    expect(oldBody).toBeDefined();
    clock.now += IDEMPOTENCY_TTL_MS - 1;
    expect((await call(key, { idem: 'old-1' })).headers.get('idempotent-replayed')).toBe('true');
    clock.now += 1;
    const fresh = await call(key, { idem: 'old-1' });
    expect(fresh.headers.get('idempotent-replayed')).toBeNull();
    expect(runs).toHaveLength(2);
    for (let i = 0; (await stored()).includes(oldBody); i++) {
      if (i > 100) throw new Error('the expired body was not deleted');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }

    // A holder that never finishes: others get 409 until IDEMPOTENCY_RUNNING_MS has passed.
    const open = hold();
    const stuck = call(key, { idem: 'stuck-1' });
    await waitUntil(() => runs.length === 3);
    expect((await call(key, { idem: 'stuck-1' })).status).toBe(409);
    clock.now += IDEMPOTENCY_RUNNING_MS;
    const takeover = call(key, { idem: 'stuck-1' });
    await waitUntil(() => runs.length === 4);
    open();
    const [taken, late] = await Promise.all([takeover, stuck]);
    expect(taken.status).toBe(200);
    expect(late.status).toBe(200); // the crashed-looking holder still answers its own client
    // The key now replays the take-over's response, not the late one's.
    const replayed = await call(key, { idem: 'stuck-1' });
    expect(replayed.headers.get('idempotent-replayed')).toBe('true');
    expect(replayed.headers.get('x-task-id')).toBe(taken.headers.get('x-task-id'));
    expect(runs).toHaveLength(4);
  });

  it('an ill-formed Idempotency-Key is a 400; requests without one, and GETs, pass through', async () => {
    const { runs, call } = countingApp();
    const key = await newKey();
    const bad = await call(key, { idem: 'has space' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as ErrorBody).error).toMatchObject({ code: 'invalid_idempotency_key', param: 'Idempotency-Key' });
    expect((await call(key, { idem: 'x'.repeat(256) })).status).toBe(400);
    await call(key);
    await call(key);
    await call(key, { idem: 'get-1', method: 'GET' });
    await call(key, { idem: 'get-1', method: 'GET' });
    expect(runs).toHaveLength(4);
  });

  it('request fingerprints differ by method, path, query and body', async () => {
    const fp = (url: string, body: string, method = 'POST') =>
      requestFingerprint(new Request(url, { method, body: method === 'GET' ? null : body, headers: { 'content-type': 'application/json' } }));
    const base = await fp('https://e.test/v1/images/generations', '{"a":1}');
    expect(await fp('https://e.test/v1/images/generations', '{ "a" : 1 }')).toBe(base);
    expect(await fp('https://e.test/api/images/generations', '{"a":1}')).not.toBe(base);
    expect(await fp('https://e.test/v1/images/generations?x=1', '{"a":1}')).not.toBe(base);
    expect(await fp('https://e.test/v1/images/generations', '{"a":2}')).not.toBe(base);
    expect(await fp('https://e.test/v1/images/generations', '{"a":1}', 'PUT')).not.toBe(base);
  });
});

describe('Idempotency-Key on POST /v1/images/generations (the Worker)', () => {
  afterEach(() => vi.restoreAllMocks());

  it('a retried generation returns the first images without a second GPU job', async () => {
    const fake = fakeBackends([env.GPU_SERVICE_URL], env.GPU_SERVICE_TOKEN);
    vi.spyOn(globalThis, 'fetch').mockImplementation(fake.fetch);
    const key = await newKey();
    const generate = (body: object) =>
      exports.default.fetch('https://edge.test/v1/images/generations', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'idempotency-key': 'gen-retry-1' },
        body: JSON.stringify(body),
      });
    const request = { prompt: 'a red apple', size: '64x64', response_format: 'b64_json', seed: 5 };
    const first = await generate(request);
    expect(first.status).toBe(200);
    const firstBody = await first.text();
    const again = await generate(request);
    expect(again.status).toBe(200);
    expect(await again.text()).toBe(firstBody);
    expect(again.headers.get('x-task-id')).toBe(first.headers.get('x-task-id'));
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const jobs = fake.backends[0].requests.filter((r) => r === 'POST /v1/jobs');
    expect(jobs).toHaveLength(1);

    const conflicting = await generate({ ...request, prompt: 'a green pear' });
    expect(conflicting.status).toBe(422);
    expect(((await conflicting.json()) as ErrorBody).error.code).toBe('idempotency_key_reused');
    expect(fake.backends[0].requests.filter((r) => r === 'POST /v1/jobs')).toHaveLength(1);
  });
});
