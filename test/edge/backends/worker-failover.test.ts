import { env } from 'cloudflare:workers';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { newApiKeyRecord } from '@image-api/shared/api/api-key';
import { buildApp } from '../../../edge/src/app';
import { fakeBackends, type FakeBackend } from './fake-backends';

const A = 'http://gpu-a.test:8788';
const B = 'http://gpu-b.test:8788';

/** The Worker app with GPU_BACKENDS = A,B (both fakes, A looking emptier so it is tried first). */
async function setup() {
  const fake = fakeBackends([A, B], env.GPU_SERVICE_TOKEN);
  vi.spyOn(globalThis, 'fetch').mockImplementation(fake.fetch);
  fake.backends[1].queueDepth = 1;
  const key = `sk-failover-${crypto.randomUUID()}`;
  const record = await newApiKeyRecord(key, { name: 'failover', tenant: 'tenant-failover' });
  await env.API_KEYS.put(record.key_hash, JSON.stringify(record));
  const app = buildApp();
  const workerEnv = { ...env, GPU_BACKENDS: `${A},${B}` };
  const generate = () =>
    app.request(
      'https://edge.test/v1/images/generations',
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ prompt: 'a red apple', size: '64x64', seed: 11, response_format: 'b64_json' }),
      },
      workerEnv,
    );
  return { backends: fake.backends, generate };
}

const jobPosts = (backend: FakeBackend) => backend.requests.filter((r) => r === 'POST /v1/jobs').length;

describe('POST /v1/images/generations over GPU_BACKENDS', () => {
  afterEach(() => vi.restoreAllMocks());

  it('a connection error on the first backend: the job runs once, on the second, under the same task id', async () => {
    const { backends, generate } = await setup();
    const [a, b] = backends;
    a.mode = 'refuse_jobs';
    const response = await generate();
    expect(response.status).toBe(200);
    const taskId = response.headers.get('x-task-id');
    expect(jobPosts(a)).toBe(1);
    expect(a.ran).toEqual([]);
    expect(b.ran).toEqual([taskId]);
    expect(((await response.json()) as { data: { seed: number }[] }).data[0].seed).toBe(11);
  });

  it('a 503 queue_full on the first backend: the job runs once, on the second', async () => {
    const { backends, generate } = await setup();
    const [a, b] = backends;
    a.mode = 'busy';
    const response = await generate();
    expect(response.status).toBe(200);
    expect(jobPosts(a)).toBe(1);
    expect(b.ran).toEqual([response.headers.get('x-task-id')]);
  });

  it('a backend that failed is skipped by the next requests; when all are busy the client gets 503 with Retry-After', async () => {
    const { backends, generate } = await setup();
    const [a, b] = backends;
    a.mode = 'refuse_jobs';
    expect((await generate()).status).toBe(200);
    a.mode = 'ok';
    expect((await generate()).status).toBe(200);
    expect(jobPosts(a)).toBe(1); // down: not asked again
    expect(b.ran).toHaveLength(2);

    b.mode = 'busy';
    a.mode = 'busy';
    const refused = await generate();
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('2');
  });
});
