/**
 * GPU service entry point: `npm run gpu-service` (settings from the environment, see config.ts).
 *
 * Graceful shutdown on SIGTERM (or SIGINT): new jobs are refused with 503 shutting_down (the edge sends
 * them to another backend) and /readyz turns 503, while queued and running jobs get SHUTDOWN_GRACE seconds
 * to finish; what is left is then cancelled (it stops at its next step), the server closes and the process
 * exits 0. A second signal exits at once with status 1.
 */
import { buildApp } from './app';
import { loadConfig } from './config';

const config = loadConfig();
const app = await buildApp({ ...config, logger: { level: process.env.LOG_LEVEL ?? 'info' } });
let closing = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (closing) {
      app.log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    closing = true;
    app.log.info({ signal, grace_seconds: config.shutdownGraceSeconds, live_jobs: app.jobs.store.live().length }, 'shutting down: draining jobs');
    app.jobs
      .shutdown(config.shutdownGraceSeconds)
      .then((drained) => {
        app.log.info(drained, 'jobs drained');
        return app.close();
      })
      .then(
        () => process.exit(0),
        (err) => {
          app.log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  });
}
await app.listen({ host: config.host, port: config.port });
app.log.info(
  {
    host: config.host,
    port: config.port,
    execution_provider: app.executionProviders.active[0],
    execution_providers: app.executionProviders.active,
    models_dir: config.modelsDir,
    max_batch: config.maxBatch,
    batch_window_ms: config.batchWindowMs,
    model_memory_budget: config.modelMemoryBudget,
  },
  'gpu service ready',
);
