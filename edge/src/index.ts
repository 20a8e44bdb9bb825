import { buildApp } from './app';
import type { EdgeBindings } from './env';

export { RateLimiter } from './rate-limit/rate-limiter';

/**
 * Worker entry. One app per isolate, so the model-list cache is shared by the requests an isolate
 * serves. Queue consumers and Durable Object classes (issue 6) are exported from here too.
 */
const app = buildApp();

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<EdgeBindings>;
