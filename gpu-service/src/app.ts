/**
 * The GPU service (internal API; docs/architecture.md "GPU service"): buildApp(opts) composes the plugins and
 * routes so tests can call app.inject() without opening a port. It probes the execution providers, builds
 * the model registry (lazy loads, LRU under MODEL_MEMORY_BUDGET, hf.co downloads), the job service (queue,
 * dynamic batching, events) and the metrics, and serves /v1/jobs, /v1/models, /healthz, /readyz, /metrics.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { ZodError } from 'zod';
import { errorBody } from '@image-api/shared/errors';
import { GenerationJobSchema } from '@image-api/shared/generation-job';
import type { ServiceConfig } from './config';
import { JobInputError } from './diffusion/pipelines/generate';
import { PostprocessModelError } from './postprocess/postprocess-model-error';
import { ClipSkipUnsupportedError } from './diffusion/text-conditioning';
import { checkpointFloatType, DEFAULT_BATCH_WINDOW_MS, DEFAULT_HF_ENDPOINT, DEFAULT_MAX_BATCH } from './config';
import { checkpointEngineFor } from './checkpoints/checkpoint-engine';
import { JobService } from './jobs/job-service';
import { errors, ServiceError } from './lib/errors';
import { probeExecutionProviders, type ExecutionProviderReport } from './lib/execution-providers';
import { ServiceMetrics } from './metrics/service-metrics';
import { ModelRegistry } from './models/model-registry';
import { describePolicy } from './models/hf-policy';
import { serviceToken } from './plugins/service-token';
import { registerOperationsRoutes } from './routes/operations';
import { streamJobEvents } from './routes/sse';

/**
 * buildApp's options: the ServiceConfig fields (see config.ts for each); those not given take the
 * config's defaults (maxBatch 8, batchWindowMs 10, no memory budget, warm-up on, ...).
 */
export type AppOptions = Pick<ServiceConfig, 'modelsDir' | 'serviceToken' | 'executionProviders' | 'intraOpNumThreads' | 'queueMax'> &
  Partial<
    Pick<
      ServiceConfig,
      | 'concurrency'
      | 'startTimeoutSeconds'
      | 'jobTimeoutSeconds'
      | 'previewInterval'
      | 'retainSeconds'
      | 'maxBatch'
      | 'batchWindowMs'
      | 'modelMemoryBudget'
      | 'hfEndpoint'
      | 'hfToken'
      | 'hfPolicy'
      | 'modelWarmUp'
      | 'checkpointDtype'
      | 'addonMemoryBudget'
      | 'checkpointAttention'
      | 'clipTokenizerDir'
      | 't5TokenizerDir'
      | 'ortTuning'
      | 'sdxlRefinerModel'
      | 'defaultBases'
      | 'upscaleTiles'
    >
  > & {
    logger?: boolean | object;
  };

/** Turn any thrown value into a ServiceError (one place decides statuses). */
function toServiceError(err: unknown): ServiceError {
  if (err instanceof ServiceError) return err;
  if (err instanceof ZodError) {
    const issue = err.issues[0];
    const param = issue.path.join('.') || null;
    return errors.invalidRequest(param, `${param ?? 'body'}: ${issue.message}`);
  }
  if (err instanceof JobInputError || err instanceof ClipSkipUnsupportedError) return errors.invalidRequest(err.param, err.message);
  if (err instanceof PostprocessModelError) return new ServiceError(503, 'model_unavailable', err.message, err.param);
  const e = err as { statusCode?: number; message?: string; code?: string };
  if (e?.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || e?.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
    return new ServiceError(415, 'unsupported_media_type', e.message ?? 'send JSON');
  }
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new ServiceError(e.statusCode, 'invalid_request', e.message ?? 'bad request');
  }
  return errors.internal((err as Error)?.message ?? String(err));
}

/**
 * Build the Fastify app. Call `app.close()` to release model sessions.
 * @throws Error when none of the requested execution providers can run here.
 */
export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: opts.logger ?? false, bodyLimit: 64 * 1024 * 1024 });
  const providers = await probeExecutionProviders(opts.executionProviders);
  for (const u of providers.unavailable) app.log.warn({ execution_provider: u.name, reason: u.reason }, 'execution provider unavailable');
  app.log.info({ execution_provider: providers.active[0], execution_providers: providers.active }, 'execution provider in use');
  // Sources are read at scrape time, after `jobs` and `registry` exist.
  const metrics: ServiceMetrics = new ServiceMetrics({
    queueDepth: () => jobs.queue.depth,
    running: () => jobs.running,
    modelsLoaded: () => registry.loadedNames().length,
    modelBytes: () => registry.loadedBytes(),
  });
  const checkpoints = checkpointEngineFor(opts.modelsDir, {
    floatType: checkpointFloatType(opts.checkpointDtype ?? 'auto', providers.active),
    attention: opts.checkpointAttention ?? 'contrib',
    tokenizerDir: opts.clipTokenizerDir,
    t5TokenizerDir: opts.t5TokenizerDir,
    defaultBases: opts.defaultBases,
  });
  // Temporary folders of conversions a crashed process left behind.
  await checkpoints.cache.sweep();
  const registry = new ModelRegistry(opts.modelsDir, {
    sessionOptions: { ...opts.ortTuning, executionProviders: providers.active, intraOpNumThreads: opts.intraOpNumThreads },
    checkpoints,
    memoryBudgetBytes: opts.modelMemoryBudget ?? 0,
    addonMemoryBudgetBytes: opts.addonMemoryBudget ?? 0,
    warmUp: opts.modelWarmUp ?? true,
    hfEndpoint: opts.hfEndpoint ?? DEFAULT_HF_ENDPOINT,
    hfToken: opts.hfToken,
    hfPolicy: opts.hfPolicy,
    onEvent: (e) => {
      metrics.modelEvent(e);
      if (e.type === 'load_failed') app.log.error({ model: e.name, error: e.error }, 'model failed to load');
      else app.log.info({ ...e, model: e.name }, `model ${e.type}`);
    },
  });
  const jobs: JobService = new JobService(
    registry,
    {
      concurrency: opts.concurrency ?? 1,
      queueMax: opts.queueMax,
      startTimeoutSeconds: opts.startTimeoutSeconds ?? 0,
      jobTimeoutSeconds: opts.jobTimeoutSeconds ?? 0,
      previewInterval: opts.previewInterval ?? 1,
      retainSeconds: opts.retainSeconds ?? 600,
      maxBatch: opts.maxBatch ?? DEFAULT_MAX_BATCH,
      batchWindowMs: opts.batchWindowMs ?? DEFAULT_BATCH_WINDOW_MS,
      refinerModel: opts.sdxlRefinerModel,
      upscaleTiles: opts.upscaleTiles,
    },
    toServiceError,
    { log: app.log, metrics },
  );
  app.decorate('models', registry);
  app.decorate('jobs', jobs);
  app.decorate('metrics', metrics);
  app.decorate('executionProviders', providers);
  app.addHook('onClose', async () => registry.close());

  app.setErrorHandler(async function renderError(err, req, reply) {
    const se = toServiceError(err);
    if (se.status >= 500) req.log.error({ err }, se.message);
    for (const [k, v] of Object.entries(se.headers)) reply.header(k, v);
    return reply.status(se.status).send(errorBody(se.type, se.code, se.message, se.param));
  });

  await app.register(serviceToken, { token: opts.serviceToken });

  registerOperationsRoutes(app, { jobs, registry, metrics, providers });

  // `hf_downloads`: what hf.co references may download here (models/hf-policy.ts).
  app.get('/v1/models', async () => ({ object: 'list', data: await registry.list(), hf_downloads: describePolicy(registry.hfPolicy) }));

  app.post('/v1/jobs', async (req, reply) => {
    const job = GenerationJobSchema.parse(req.body);
    const rec = await jobs.submit(job);
    const cancelOnDisconnect = () => jobs.cancel(rec.id, 'the client disconnected');
    if (String(req.headers.accept ?? '').includes('text/event-stream')) {
      streamJobEvents(req, reply, rec, cancelOnDisconnect);
      return reply;
    }
    // A synchronous caller that goes away cancels its job (nobody would receive the images).
    reply.raw.on('close', () => {
      if (!rec.isFinished) cancelOnDisconnect();
    });
    await rec.finished;
    if (rec.result) return rec.result;
    reply.status(rec.failure?.status ?? 500);
    return rec.failure?.body ?? errorBody('server_error', 'internal_error', 'the job failed');
  });

  app.get<{ Params: { id: string } }>('/v1/jobs/:id', async (req) => {
    const rec = jobs.store.get(req.params.id);
    if (!rec) throw errors.jobNotFound(req.params.id);
    return { id: rec.id, status: rec.status, result: rec.result ?? null, error: rec.failure?.body.error ?? null };
  });

  app.get<{ Params: { id: string } }>('/v1/jobs/:id/events', async (req, reply) => {
    const rec = jobs.store.get(req.params.id);
    if (!rec) throw errors.jobNotFound(req.params.id);
    streamJobEvents(req, reply, rec);
    return reply;
  });

  app.delete<{ Params: { id: string } }>('/v1/jobs/:id', async (req) => {
    const rec = jobs.store.get(req.params.id);
    if (!rec) throw errors.jobNotFound(req.params.id);
    const cancelled = jobs.cancel(rec.id);
    return { id: rec.id, cancelled, status: rec.status };
  });

  return app;
}

declare module 'fastify' {
  interface FastifyInstance {
    models: ModelRegistry;
    jobs: JobService;
    metrics: ServiceMetrics;
    executionProviders: ExecutionProviderReport;
  }
}
