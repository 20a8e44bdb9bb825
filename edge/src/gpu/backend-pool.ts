import type { GenerationJobInput, GenerationResult } from '@image-api/shared/generation-job';
import { ApiError, backendUnavailable } from '../lib/api-error';
import {
  GpuBackendClient,
  type BackendModelArray,
  type BackendProbe,
  type GpuCancelResult,
  type GpuClient,
  type GpuJobStatus,
  type GpuJobStream,
  type JobLocation,
} from './backend-client';

/** How long a probe result is trusted before the backend is probed again. */
export const HEALTH_TTL_MS = 5_000;
/** How long a backend that failed a call (connection error) is skipped. */
export const DOWN_MS = 15_000;
/** Longest a 503 (busy) backend is skipped, whatever its Retry-After says. */
export const MAX_BUSY_MS = 10_000;
/** A probe slower than this counts as "not ready". */
export const PROBE_TIMEOUT_MS = 2_000;
/** How many job id → backend entries are remembered (oldest forgotten first). */
export const MAX_REMEMBERED_JOBS = 2_000;

/** Options of {@link GpuBackendPool}. */
export interface GpuBackendPoolOptions {
  /** Base URLs of the GPU services (≥ 1), e.g. EdgeConfig.gpuBackendUrls. */
  urls: readonly string[];
  /** GPU_SERVICE_TOKEN, shared by every backend. */
  token: string;
  /** fetch to use (default: the global one, looked up at call time). */
  fetch?: typeof fetch;
  /** Clock in unix ms (default Date.now). */
  now?: () => number;
  healthTtlMs?: number;
  downMs?: number;
  probeTimeoutMs?: number;
}

/** What the pool knows about one backend. */
interface BackendState {
  client: GpuBackendClient;
  /** Skipped until this time (unix ms) after a failed call; 0 = not down. */
  downUntilMs: number;
  /** Last probe and when it was taken. */
  probe: BackendProbe | null;
  probedAtMs: number;
  /** Jobs this isolate has running there (sync calls and open event streams). */
  inFlight: number;
  /** When this backend was last picked (tie-break: least recently used first). */
  lastPickedMs: number;
  /** Pick counter value at the last pick (tie-break within one millisecond). */
  lastPickSeq: number;
}

/** A snapshot of one backend's state, for logs, /healthz-style pages and tests. */
export interface BackendStatus {
  url: string;
  down: boolean;
  downUntilMs: number;
  inFlight: number;
  ready: boolean | null;
  queueDepth: number | null;
}

/**
 * Whether a failed call should be retried on another backend: the backend was unreachable
 * (connection refused/reset: 502 `backend_unavailable`) or busy (any 503, e.g. `queue_full`).
 * Everything else (validation 4xx, a failed job, a bad service token) would fail the same way
 * elsewhere, or is not safe to repeat.
 */
export function isFailoverError(error: unknown): error is ApiError {
  return error instanceof ApiError && (error.code === 'backend_unavailable' || error.status === 503);
}

/**
 * Several GPU services behind the one {@link GpuClient} interface (issue 6 part 9).
 *
 * Choice: among backends that are not marked down and whose last probe (GET /readyz, else /healthz;
 * cached HEALTH_TTL_MS; only taken when there is a choice to make) says ready, the one with the
 * fewest jobs — this isolate's jobs in flight there plus the queue depth the probe reported —
 * least recently picked on ties. When every backend is down, they are tried anyway, soonest to
 * recover first (a request is never refused without trying).
 *
 * Failover: a connection error or a 503 marks that backend down (DOWN_MS; a 503 for its
 * Retry-After, at most MAX_BUSY_MS) and the same call goes to the next backend, up to once per
 * backend. Job ids are caller-chosen, so a resubmitted job keeps its id; a job is sent to a second
 * backend only when the first refused it or could not be reached (it may have died mid-job: its
 * result is lost with it). When all fail, the last error is thrown (503 keeps its Retry-After).
 *
 * State lives in the pool object; keep one per isolate (ModelCatalog.backendPool does) so
 * health, down marks and in-flight counts are shared by the requests an isolate serves.
 */
export class GpuBackendPool implements GpuClient {
  /** Stable identity of this backend set (used as the model-cache key). */
  readonly key: string;
  private readonly backends: Map<string, BackendState>;
  private readonly jobBackends = new Map<string, string>();
  private readonly now: () => number;
  private readonly healthTtlMs: number;
  private readonly downMs: number;
  private readonly probeTimeoutMs: number;
  private readonly token: string;
  private readonly fetchImpl: typeof fetch | undefined;
  private pickSeq = 0;

  constructor(options: GpuBackendPoolOptions) {
    if (options.urls.length === 0) throw new Error('GpuBackendPool needs at least one backend URL');
    this.token = options.token;
    this.fetchImpl = options.fetch;
    this.now = options.now ?? (() => Date.now());
    this.healthTtlMs = options.healthTtlMs ?? HEALTH_TTL_MS;
    this.downMs = options.downMs ?? DOWN_MS;
    this.probeTimeoutMs = options.probeTimeoutMs ?? PROBE_TIMEOUT_MS;
    this.backends = new Map(
      options.urls.map((url) => {
        const client = new GpuBackendClient({ baseUrl: url, token: options.token, fetch: options.fetch });
        const state: BackendState = { client, downUntilMs: 0, probe: null, probedAtMs: 0, inFlight: 0, lastPickedMs: 0, lastPickSeq: 0 };
        return [client.baseUrl, state];
      }),
    );
    this.key = [...this.backends.keys()].join(',');
  }

  /** Base URLs in configured order. */
  get urls(): string[] {
    return [...this.backends.keys()];
  }

  /** The single-backend client of `url` (one of {@link urls}). @throws Error for an unknown URL. */
  client(url: string): GpuBackendClient {
    return this.state(url).client;
  }

  /** What the pool currently believes about each backend. */
  status(): BackendStatus[] {
    const nowMs = this.now();
    return [...this.backends.entries()].map(([url, s]) => ({
      url,
      down: s.downUntilMs > nowMs,
      downUntilMs: s.downUntilMs,
      inFlight: s.inFlight,
      ready: s.probe ? s.probe.ready : null,
      queueDepth: s.probe ? s.probe.queueDepth : null,
    }));
  }

  /** Skip `url` for `forMs` (default DOWN_MS). Callers may use it after a failure they saw themselves. */
  markDown(url: string, forMs: number = this.downMs): void {
    const state = this.state(url);
    state.downUntilMs = Math.max(state.downUntilMs, this.now() + forMs);
    state.probe = null;
  }

  /** Clear a down mark (e.g. after a successful call). */
  markUp(url: string): void {
    this.state(url).downUntilMs = 0;
  }

  /** The backend a job was submitted to by this pool (this isolate), if remembered. */
  backendOf(jobId: string): string | undefined {
    return this.jobBackends.get(jobId);
  }

  /**
   * Pick the backend for the next job (see the class comment), skipping `exclude`.
   * @returns its base URL, or null when every backend is excluded.
   */
  async selectBackend(exclude: ReadonlySet<string> = new Set()): Promise<string | null> {
    const nowMs = this.now();
    const open = [...this.backends.entries()].filter(([url]) => !exclude.has(url));
    if (open.length === 0) return null;
    const up = open.filter(([, s]) => s.downUntilMs <= nowMs);
    if (up.length === 0) {
      // Everything is marked down: try the one that should recover first rather than refuse.
      open.sort(([, a], [, b]) => a.downUntilMs - b.downUntilMs);
      return this.pick(open[0][0]);
    }
    if (up.length === 1) return this.pick(up[0][0]);
    await Promise.all(up.map(([, s]) => this.refreshProbe(s, nowMs)));
    const ready = up.filter(([, s]) => s.probe?.ready !== false);
    const candidates = ready.length > 0 ? ready : up;
    candidates.sort(([, a], [, b]) => load(a) - load(b) || a.lastPickSeq - b.lastPickSeq);
    return this.pick(candidates[0][0]);
  }

  /**
   * Run `call` on the selected backend; on a failover error ({@link isFailoverError}) mark that
   * backend down and run it on the next one, each backend at most once. The backend's in-flight
   * count includes the call while it runs.
   * @returns the call's value and the backend that produced it.
   * @throws the call's non-failover error at once; the last failover error when all backends failed.
   */
  async submitWithFailover<T>(call: (client: GpuBackendClient) => Promise<T>): Promise<{ value: T; backendUrl: string }> {
    const tried = new Set<string>();
    let lastError: unknown = null;
    for (;;) {
      const url = await this.selectBackend(tried);
      if (url === null) break;
      tried.add(url);
      const state = this.state(url);
      state.inFlight += 1;
      try {
        const value = await call(state.client);
        this.markUp(url);
        return { value, backendUrl: url };
      } catch (error) {
        if (!isFailoverError(error)) throw error;
        this.markDown(url, error.status === 503 ? busyMs(error) : this.downMs);
        console.warn(`GPU backend ${url} failed (${error.code}); trying another`);
        lastError = error;
      } finally {
        state.inFlight -= 1;
      }
    }
    throw lastError ?? backendUnavailable('No GPU backend is available. Please retry shortly.');
  }

  /** GET /v1/models from a healthy backend (failover as above). The backends are assumed to serve the same models. */
  async listModels(signal?: AbortSignal): Promise<BackendModelArray> {
    return (await this.submitWithFailover((client) => client.listModels(signal))).value;
  }

  /** POST /v1/jobs (JSON) with failover; the job id is kept on every attempt. */
  async runJob(job: GenerationJobInput, signal?: AbortSignal): Promise<GenerationResult> {
    const { value, backendUrl } = await this.submitWithFailover((client) => {
      this.remember(job.id, client.baseUrl);
      return client.runJob(job, signal);
    });
    this.remember(job.id, backendUrl);
    return value;
  }

  /**
   * POST /v1/jobs as an event stream, with failover until a backend accepts the job. The stream
   * counts as in flight on its backend until it ends; if it breaks (the backend died mid-job), that
   * backend is marked down so a resubmission of the same job goes elsewhere.
   */
  async streamJob(job: GenerationJobInput, signal?: AbortSignal): Promise<GpuJobStream> {
    const { value } = await this.submitWithFailover(async (client) => {
      this.remember(job.id, client.baseUrl);
      return this.tracked(await client.streamJob(job, signal), signal);
    });
    return value;
  }

  /**
   * GET /v1/jobs/:id/events on the job's backend: `backendUrl` when given, else the one this pool
   * remembers, else the one that knows the job (asked with GET /v1/jobs/:id).
   * @throws ApiError 404 `job_not_found` when no backend knows it; 502 when its backend is unreachable.
   */
  async jobEvents(jobId: string, options: JobLocation & { lastEventId?: string } = {}): Promise<GpuJobStream> {
    const url = options.backendUrl ?? this.backendOf(jobId) ?? (await this.locate(jobId, options.signal));
    if (url === undefined) throw jobNotFound(jobId);
    return this.tracked(await this.clientFor(url).jobEvents(jobId, options), options.signal);
  }

  /** GET /v1/jobs/:id on the job's backend (located as in {@link jobEvents}); null when none knows it. */
  async getJob(jobId: string, options: JobLocation = {}): Promise<GpuJobStatus | null> {
    const url = options.backendUrl ?? this.backendOf(jobId);
    if (url !== undefined) return this.clientFor(url).getJob(jobId, options);
    return this.firstAnswer((client) => client.getJob(jobId, options));
  }

  /** DELETE /v1/jobs/:id on the job's backend, or on every backend when it is not known; null when none knows it. */
  async cancelJob(jobId: string, options: JobLocation = {}): Promise<GpuCancelResult | null> {
    const url = options.backendUrl ?? this.backendOf(jobId);
    if (url !== undefined) return this.clientFor(url).cancelJob(jobId, options);
    return this.firstAnswer((client) => client.cancelJob(jobId, options));
  }

  private state(url: string): BackendState {
    const state = this.backends.get(url.replace(/\/+$/, ''));
    if (!state) throw new Error(`${url} is not one of this pool's GPU backends`);
    return state;
  }

  /** A recorded backend may have left the configuration: talk to it directly then. */
  private clientFor(url: string): GpuBackendClient {
    const state = this.backends.get(url.replace(/\/+$/, ''));
    return state ? state.client : new GpuBackendClient({ baseUrl: url, token: this.token, fetch: this.fetchImpl });
  }

  private pick(url: string): string {
    const state = this.state(url);
    state.lastPickedMs = this.now();
    state.lastPickSeq = ++this.pickSeq;
    return url;
  }

  private async refreshProbe(state: BackendState, nowMs: number): Promise<void> {
    if (state.probe && nowMs - state.probedAtMs < this.healthTtlMs) return;
    const timeout = AbortSignal.timeout(this.probeTimeoutMs);
    state.probe = await state.client.probe(timeout);
    state.probedAtMs = this.now();
    if (!state.probe.ready) console.warn(`GPU backend ${state.client.baseUrl} not ready: ${state.probe.reason}`);
  }

  private remember(jobId: string, url: string): void {
    this.jobBackends.delete(jobId);
    this.jobBackends.set(jobId, url);
    if (this.jobBackends.size > MAX_REMEMBERED_JOBS) {
      const oldest = this.jobBackends.keys().next().value;
      if (oldest !== undefined) this.jobBackends.delete(oldest);
    }
  }

  /** Ask every backend which one knows the job (GET /v1/jobs/:id); undefined when none does. */
  private async locate(jobId: string, signal?: AbortSignal): Promise<string | undefined> {
    const answers = await Promise.allSettled(
      [...this.backends.values()].map(async (s) => ((await s.client.getJob(jobId, { signal })) ? s.client.baseUrl : undefined)),
    );
    for (const answer of answers) if (answer.status === 'fulfilled' && answer.value) return answer.value;
    const failure = answers.find((a): a is PromiseRejectedResult => a.status === 'rejected');
    if (failure && answers.every((a) => a.status === 'rejected')) throw failure.reason;
    return undefined;
  }

  /** Run `call` on every backend at once; the first non-null answer, null when all say null. */
  private async firstAnswer<T>(call: (client: GpuBackendClient) => Promise<T | null>): Promise<T | null> {
    const answers = await Promise.allSettled([...this.backends.values()].map((s) => call(s.client)));
    for (const answer of answers) if (answer.status === 'fulfilled' && answer.value !== null) return answer.value;
    const failure = answers.find((a): a is PromiseRejectedResult => a.status === 'rejected');
    if (failure && answers.every((a) => a.status === 'rejected')) throw failure.reason;
    return null;
  }

  /**
   * Count an event stream as in flight on its backend until it ends, and mark the backend down
   * when the stream breaks with a network error (TypeError, e.g. "Network connection lost") that
   * our side did not cause (`signal` not aborted, stream not cancelled by the reader).
   */
  private tracked(stream: GpuJobStream, signal?: AbortSignal): GpuJobStream {
    const state = this.backends.get(stream.backendUrl);
    const source = stream.response.body;
    // With one backend there is nothing to balance or fail over to: no stream wrapper in every event's path.
    if (!state || !source || this.backends.size === 1) return stream;
    state.inFlight += 1;
    let open = true;
    const close = () => {
      if (!open) return;
      open = false;
      state.inFlight -= 1;
    };
    const reader = source.getReader();
    const body = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          const { done, value } = await reader.read();
          if (done) {
            close();
            controller.close();
          } else {
            controller.enqueue(value);
          }
        } catch (error) {
          close();
          if (error instanceof TypeError && !signal?.aborted) {
            this.markDown(stream.backendUrl);
            console.warn(`GPU backend ${stream.backendUrl}: event stream broke`, error);
          }
          controller.error(error);
        }
      },
      cancel: async (reason) => {
        close();
        await reader.cancel(reason);
      },
    });
    const response = new Response(body, { status: stream.response.status, headers: stream.response.headers });
    return { backendUrl: stream.backendUrl, response };
  }
}

/** Load score of a backend: our jobs there plus the queue depth it reported. */
function load(state: BackendState): number {
  return state.inFlight + (state.probe?.queueDepth ?? 0);
}

/** How long to skip a backend that answered 503: its Retry-After (seconds), at most MAX_BUSY_MS. */
function busyMs(error: ApiError): number {
  const seconds = Number(error.headers['retry-after']);
  return Math.min(MAX_BUSY_MS, Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : MAX_BUSY_MS);
}

function jobNotFound(jobId: string): ApiError {
  return new ApiError(404, 'not_found_error', 'job_not_found', `No GPU backend knows the job "${jobId}".`);
}
