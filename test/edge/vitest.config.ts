import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import { defineProject } from 'vitest/config';

// The 'edge' project: Worker suites run inside workerd with the bindings of wrangler.toml
// (KV, R2 simulated by miniflare, storage isolated per test file). Secrets get test values here.
const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../..');

export default defineProject({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: path.join(repoRoot, 'wrangler.toml') },
      miniflare: {
        bindings: {
          GPU_SERVICE_URL: 'http://gpu.test:8788',
          GPU_SERVICE_TOKEN: 'test-gpu-token',
          LINK_SIGNING_SECRET: 'test-link-secret',
        },
      },
    }),
  ],
  test: {
    name: 'edge',
    include: ['**/*.test.ts'],
    testTimeout: 30_000,
  },
});
