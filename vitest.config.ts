import { defineConfig } from 'vitest/config';

// Two projects: Node-side suites (engine, GPU service, CLI, end-to-end, browser) and the
// Worker suites, which run inside workerd through @cloudflare/vitest-pool-workers.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'node',
          include: ['test/**/*.test.ts'],
          exclude: ['test/edge/**', 'node_modules/**'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
      'test/edge/vitest.config.ts',
    ],
  },
});
