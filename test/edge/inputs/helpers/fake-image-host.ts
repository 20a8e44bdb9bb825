import { vi } from 'vitest';

/** What a fake image host answers for one URL. */
export type HostRoute = () => Response | Promise<Response>;

/** The URLs the Worker asked the fake internet for. */
export interface FakeImageHost {
  requested: string[];
}

/**
 * Add public image hosts to the fetch stub that installFakeGpuService put in place: requests to a URL
 * in `routes` are answered by it, every other request goes to the fake GPU service (which refuses
 * anything but its own base URL). Restored together with the fake GPU service.
 */
export function addFakeImageHost(routes: Record<string, HostRoute>): FakeImageHost {
  const mocked = vi.mocked(globalThis.fetch);
  const gpu = mocked.getMockImplementation();
  if (!gpu) throw new Error('install the fake GPU service first');
  const host: FakeImageHost = { requested: [] };
  mocked.mockImplementation(async (input, init) => {
    const url = new Request(input, init).url;
    const route = routes[url];
    if (route) {
      host.requested.push(url);
      return route();
    }
    return gpu(input, init);
  });
  return host;
}
