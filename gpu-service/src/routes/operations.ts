/**
 * Operations routes: GET /healthz (liveness, no token), GET /readyz (a model can run and the queue has
 * room; 503 with the reason otherwise), GET /metrics (Prometheus text; the token is required like every
 * route but /healthz).
 */
import type { FastifyInstance } from 'fastify';
import { errorBody } from '@image-api/shared/errors';
import type { JobService } from '../jobs/job-service';
import type { ExecutionProviderReport } from '../lib/execution-providers';
import type { ServiceMetrics } from '../metrics/service-metrics';
import type { ModelRegistry } from '../models/model-registry';
import { ONNXRUNTIME_VERSION } from '../onnx/session';
import { ENGINE_VERSION } from '../version';

export interface OperationsRouteOptions {
  jobs: JobService;
  registry: ModelRegistry;
  metrics: ServiceMetrics;
  providers: ExecutionProviderReport;
}

/** Register /healthz, /readyz and /metrics on `app`. */
export function registerOperationsRoutes(app: FastifyInstance, opts: OperationsRouteOptions): void {
  const { jobs, registry, metrics, providers } = opts;
  const load = () => ({ queue_depth: jobs.queue.depth, queue_max: jobs.queue.queueMax, running: jobs.running, slots: jobs.queue.concurrency });

  app.get('/healthz', async () => ({
    ok: true,
    engine_version: ENGINE_VERSION,
    onnxruntime_version: ONNXRUNTIME_VERSION,
    // The providers sessions use, first = the one onnxruntime runs the graphs on.
    execution_provider: providers.active[0],
    execution_providers: providers.active,
    requested_execution_providers: providers.requested,
    unavailable_execution_providers: providers.unavailable,
    available_execution_providers: providers.build.map((b) => b.name),
    accepting_jobs: jobs.isAccepting,
    models_loaded: registry.loadedNames(),
    ...load(),
  }));

  app.get('/readyz', async (_req, reply) => {
    const notReady = (code: string, message: string) => {
      reply.status(503).header('retry-after', '5');
      return { ready: false, ...load(), ...errorBody('server_error', code, message, null) };
    };
    if (!jobs.isAccepting) return notReady('shutting_down', 'The GPU service is shutting down.');
    if (jobs.queue.depth >= jobs.queue.queueMax) return notReady('queue_full', `The job queue is full (${jobs.queue.depth} of ${jobs.queue.queueMax} waiting).`);
    const runnable = await registry.ensureRunnable();
    if (!runnable.ok) return notReady('no_model', runnable.reason ?? 'no model can run');
    return { ready: true, models_loaded: registry.loadedNames(), ...load() };
  });

  app.get('/metrics', async (_req, reply) => {
    const { body, contentType } = await metrics.render();
    reply.header('content-type', contentType);
    return body;
  });
}
