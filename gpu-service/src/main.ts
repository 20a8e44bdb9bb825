/** GPU service entry point: `npm run gpu-service` (settings from the environment, see config.ts). */
import { buildApp } from './app';
import { loadConfig } from './config';

const config = loadConfig();
const app = await buildApp({ ...config, logger: { level: process.env.LOG_LEVEL ?? 'info' } });
let closing = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down');
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
await app.listen({ host: config.host, port: config.port });
app.log.info({ executionProviders: config.executionProviders, modelsDir: config.modelsDir }, 'gpu service ready');
