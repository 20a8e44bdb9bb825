import { env, exports } from 'cloudflare:workers';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { installFakeGpuService, type FakeGpuService } from '../helpers/fake-gpu-service';
import { seedApiKey } from '../helpers/api-keys';
import { apiKeyHash } from '@image-api/shared/api/api-key';

const GOOD_KEY = 'sk-test-good-key';
const REVOKED_KEY = 'sk-test-revoked-key';

function generate(headers: Record<string, string>): Promise<Response> {
  return exports.default.fetch('https://edge.test/v1/images/generations', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ prompt: 'a red apple' }),
  });
}

describe('Bearer API-key authentication', () => {
  let gpu: FakeGpuService;
  beforeAll(async () => {
    await seedApiKey(env.API_KEYS, { key: GOOD_KEY, name: 'good' });
    await seedApiKey(env.API_KEYS, { key: REVOKED_KEY, name: 'old', revoked: true });
  });
  beforeEach(() => {
    gpu = installFakeGpuService(env.GPU_SERVICE_URL, env.GPU_SERVICE_TOKEN);
  });
  afterEach(() => gpu.restore());

  it('answers 401 missing_api_key without an Authorization header', async () => {
    const response = await generate({});
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({
      error: { code: 'missing_api_key', message: expect.any(String), param: null, type: 'authentication_error' },
    });
    expect(gpu.jobs).toHaveLength(0);
  });

  it('answers 401 missing_api_key for a non-Bearer scheme', async () => {
    const response = await generate({ authorization: `Basic ${btoa('user:pass')}` });
    expect(response.status).toBe(401);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('missing_api_key');
  });

  it('answers 401 invalid_api_key for an unknown key', async () => {
    const response = await generate({ authorization: 'Bearer sk-test-wrong-key' });
    expect(response.status).toBe(401);
    const body = (await response.json()) as { error: { code: string; type: string } };
    expect(body.error).toMatchObject({ code: 'invalid_api_key', type: 'authentication_error' });
    expect(gpu.jobs).toHaveLength(0);
  });

  it('answers 401 invalid_api_key for a revoked key', async () => {
    const response = await generate({ authorization: `Bearer ${REVOKED_KEY}` });
    expect(response.status).toBe(401);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('invalid_api_key');
    expect(body.error.message).toMatch(/revoked/);
  });

  it('refuses a record stored under a hash that is not the key_hash it carries', async () => {
    // A record copied under another key's hash must not authenticate that other key.
    const stolen = await env.API_KEYS.get(await apiKeyHash(GOOD_KEY));
    await env.API_KEYS.put(await apiKeyHash('sk-test-copied'), stolen!);
    const response = await generate({ authorization: 'Bearer sk-test-copied' });
    expect(response.status).toBe(401);
  });

  it('lets a valid key through to the GPU service', async () => {
    const response = await generate({ authorization: `Bearer ${GOOD_KEY}` });
    expect(response.status).toBe(200);
    expect(gpu.jobs).toHaveLength(1);
    expect(gpu.jobs[0].tenant).toBe('tenant-a');
  });

  it('protects GET /v1/models too', async () => {
    const response = await exports.default.fetch('https://edge.test/v1/models');
    expect(response.status).toBe(401);
  });
});
