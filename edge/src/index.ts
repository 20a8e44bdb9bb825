import { buildApp } from './app';
import type { EdgeBindings } from './env';
import { ModelCatalog } from './gpu/model-catalog';
import { asyncTaskConsumer } from './queue/async-task-consumer';

export { RateLimiter } from './rate-limit/rate-limiter';

/**
 * Worker entry. One app per isolate, so the model-list cache is shared by the requests an isolate
 * serves; the async task Queue consumer shares the same catalog (and so the GPU backend pool's
 * health marks). Durable Object classes (issue 6) are exported from here too.
 */
const catalog = new ModelCatalog();
const app = buildApp({ catalog });

export default {
  fetch: app.fetch,
  queue: asyncTaskConsumer({ catalog }),
} satisfies ExportedHandler<EdgeBindings>;
