/**
 * The edge's `Server-Timing` header (edge/src/lib/server-timing.ts): an authenticated generation says how
 * long its phases took, in the standard `name;dur=ms` form and with nothing but the fixed phase names; a
 * request without a valid key gets no header; SERVER_TIMING = "false" turns it off.
 */
import { env, exports } from 'cloudflare:workers';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../../edge/src/app';
import { SERVER_TIMING_PHASES } from '../../../edge/src/lib/server-timing';
import { seedApiKey } from '../helpers/api-keys';
import { installFakeGpuService, type FakeGpuService } from '../helpers/fake-gpu-service';

const KEY = 'sk-test-server-timing';
const ORIGIN = 'https://edge.test';
const ENTRY = /^([a-z0-9]+);dur=(\d+\.\d)(?:;desc="(\d+) calls")?$/;

function init(key = KEY): RequestInit {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ prompt: 'a red apple', size: '64x64', sampling_steps: 1, response_format: 'b64_json' }),
  };
}

describe('Server-Timing', () => {
  let gpu: FakeGpuService;
  beforeAll(async () => {
    await seedApiKey(env.API_KEYS, { key: KEY, name: 'timing-test', tenant: 'tenant-t' });
  });
  beforeEach(() => {
    gpu = installFakeGpuService(env.GPU_SERVICE_URL, env.GPU_SERVICE_TOKEN);
  });
  afterEach(() => gpu.restore());

  it('a generation reports auth, task-row, GPU, R2 and total time, and nothing else', async () => {
    const response = await exports.default.fetch(`${ORIGIN}/v1/images/generations`, init());
    expect(response.status).toBe(200);
    const header = response.headers.get('server-timing');
    expect(header).not.toBeNull();
    const entries = header!.split(', ').map((item) => {
      const match = ENTRY.exec(item);
      expect(match, item).not.toBeNull();
      return { name: match![1], ms: Number(match![2]) };
    });
    // A key without limits takes no rate-limit call; each phase appears once, in SERVER_TIMING_PHASES order.
    expect(entries.map((e) => e.name)).toEqual(['auth', 'db', 'gpu', 'r2', 'total']);
    expect(entries.map((e) => e.name)).toEqual(SERVER_TIMING_PHASES.filter((p) => entries.some((e) => e.name === p)));
    const total = entries.find((e) => e.name === 'total')!.ms;
    for (const entry of entries) expect(entry.ms, entry.name).toBeGreaterThanOrEqual(0);
    expect(entries.filter((e) => e.name !== 'total').reduce((sum, e) => sum + e.ms, 0)).toBeLessThanOrEqual(total + 0.5);
    // Nothing of the request, the key, the task or the backend.
    const taskId = response.headers.get('x-task-id')!;
    for (const secret of [taskId, KEY, 'tenant-t', env.GPU_SERVICE_URL, 'apple']) expect(header).not.toContain(secret);
    await response.arrayBuffer();
  });

  it('a request refused for its key gets no header', async () => {
    const response = await exports.default.fetch(`${ORIGIN}/v1/images/generations`, init('sk-not-a-key-of-anyone'));
    expect(response.status).toBe(401);
    expect(response.headers.get('server-timing')).toBeNull();
    expect(gpu.jobs).toHaveLength(0);
  });

  it('SERVER_TIMING = "false" turns it off', async () => {
    const response = await buildApp().request('/v1/images/generations', init(), { ...env, SERVER_TIMING: 'false' });
    expect(response.status).toBe(200);
    expect(response.headers.get('server-timing')).toBeNull();
    await response.arrayBuffer();
  });
});
