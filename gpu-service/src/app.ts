/**
 * The GPU service (internal API; ARCHITECTURE.md "GPU service"): buildApp(opts) composes the plugins and
 * routes so tests can call app.inject() without opening a port.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { ZodError } from 'zod';
import { errorBody } from '../../shared/src/errors';
import { GenerationJobSchema } from '../../shared/src/generation-job';
import type { ServiceConfig } from './config';
import { JobInputError } from './diffusion/pipelines/generate';
import { ClipSkipUnsupportedError } from './diffusion/text-conditioning';
import { JobQueue } from './jobs/job-queue';
import { runJob } from './jobs/run-job';
import { errors, ServiceError } from './lib/errors';
import { ModelRegistry } from './models/model-registry';
import { availableExecutionProviders } from './onnx/session';
import { serviceToken } from './plugins/service-token';
import { ENGINE_VERSION } from './version';

export type AppOptions = Pick<ServiceConfig, 'modelsDir' | 'serviceToken' | 'executionProviders' | 'intraOpNumThreads' | 'queueMax'> & {
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
  const e = err as { statusCode?: number; message?: string; code?: string };
  if (e?.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || e?.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
    return new ServiceError(415, 'unsupported_media_type', e.message ?? 'send JSON');
  }
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new ServiceError(e.statusCode, 'invalid_request', e.message ?? 'bad request');
  }
  return errors.internal((err as Error)?.message ?? String(err));
}

/** Build the Fastify app. Call `app.close()` to release model sessions. */
export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: opts.logger ?? false, bodyLimit: 64 * 1024 * 1024 });
  const registry = new ModelRegistry(opts.modelsDir, {
    executionProviders: opts.executionProviders,
    intraOpNumThreads: opts.intraOpNumThreads,
  });
  const queue = new JobQueue(1, opts.queueMax);
  app.decorate('models', registry);
  app.decorate('jobQueue', queue);
  app.addHook('onClose', async () => registry.close());

  app.setErrorHandler(async function renderError(err, req, reply) {
    const se = toServiceError(err);
    if (se.status >= 500) req.log.error({ err }, se.message);
    for (const [k, v] of Object.entries(se.headers)) reply.header(k, v);
    return reply.status(se.status).send(errorBody(se.type, se.code, se.message, se.param));
  });

  await app.register(serviceToken, { token: opts.serviceToken });

  app.get('/healthz', async () => ({
    ok: true,
    engine_version: ENGINE_VERSION,
    execution_providers: opts.executionProviders,
    available_execution_providers: availableExecutionProviders(),
  }));

  app.get('/v1/models', async () => ({ object: 'list', data: await registry.list() }));

  app.post('/v1/jobs', async (req) => {
    const job = GenerationJobSchema.parse(req.body);
    let model;
    try {
      model = await registry.get(job.model);
    } catch (err) {
      if ((err as { code?: string }).code === 'model_not_found') throw errors.modelNotFound(job.model, await registry.names());
      throw errors.modelBroken(job.model, (err as Error).message);
    }
    return queue.run(() => runJob(model, job));
  });

  return app;
}

declare module 'fastify' {
  interface FastifyInstance {
    models: ModelRegistry;
    jobQueue: JobQueue;
  }
}
