import type { ServerTiming } from '../lib/server-timing';
import { TASKS_SCHEMA_STATEMENTS } from './task-schema';
import {
  TASK_STATUSES,
  TaskErrorSchema,
  TaskResultSchema,
  type NewTask,
  type TaskError,
  type TaskOwner,
  type TaskResult,
  type TaskRow,
  type TaskStatus,
} from './task-types';

/** Options of {@link TaskStore}. */
export interface TaskStoreOptions {
  /** Clock in unix milliseconds (default Date.now, looked up per call so faked clocks apply). */
  now?: () => number;
  /** The request's phase timing: every query is added to its `db` phase (lib/server-timing.ts). */
  timing?: ServerTiming;
}

/** What {@link TaskStore.updateRunning} changes on an open row (absent fields stay as they are). */
export interface RunningChange {
  /** The GPU service that accepted the job (base URL). */
  backend?: string;
  /** The GPU service started the job: status PROCESSING. */
  processing?: boolean;
  /** Progress in 0..100 (rounded down) and the ETA in seconds or null; also makes it PROCESSING. */
  progress?: { percent: number; etaSeconds: number | null };
}

/** Options of {@link TaskStore.create} / {@link TaskStore.newRow}. */
export interface CreateTaskOptions {
  /**
   * The caller submits the job at once itself (the sync and streaming routes): the row starts with
   * attempts = 1, so the runner needs no separate startAttempt write (RunGenerationInput.inserted).
   */
  submitting?: boolean;
  /**
   * The GPU service the job is about to be submitted to, when the caller knows it already (a single
   * configured backend): recorded in the insert itself, so the runner need not write it separately.
   */
  backend?: string;
}

/** Raw row as D1 returns it. */
interface TaskRecord {
  id: string;
  tenant: string;
  key_hash: string;
  key_name: string;
  style: string;
  status: string;
  reason: string | null;
  error_json: string | null;
  progress_percent: number;
  eta_seconds: number | null;
  request_json: string;
  result_json: string | null;
  webhook_url: string | null;
  backend: string | null;
  attempts: number;
  created_at: number;
  updated_at: number;
}

/** SQL condition "the task has not ended" (every transition but requeue is guarded by it). */
const OPEN = "status IN ('QUEUED', 'PROCESSING')";

/** Default and largest page of {@link TaskStore.list}. */
export const DEFAULT_TASK_LIST_LIMIT = 20;
export const MAX_TASK_LIST_LIMIT = 100;

/**
 * The task table in D1 (schema: task-schema.ts). Every generation of every API style has one row;
 * the runner (run-generation.ts) moves it through its states, routes read it.
 *
 * - Reads for clients (`get`, `list`) are scoped by owner (tenant + key hash): another key's task is
 *   simply not found, so routes answer 404 without revealing it exists.
 * - Every transition is a single conditional UPDATE on an open (QUEUED/PROCESSING) row and returns
 *   whether it applied, so a cancel and a finishing runner cannot both win, and an ended task never
 *   changes again.
 * - When the table does not exist (migrations not applied: `wrangler dev`, tests) the store creates
 *   it from TASKS_SCHEMA_STATEMENTS on the first "no such table" error and retries once.
 * @throws the D1 error for anything else (a failed query is a server error, not a client's).
 */
export class TaskStore {
  private readonly now: () => number;
  private readonly timing: ServerTiming | undefined;

  constructor(
    private readonly db: D1Database,
    private readonly options: TaskStoreOptions = {},
  ) {
    this.now = options.now ?? (() => Date.now());
    this.timing = options.timing;
  }

  /** The same table without the request's phase timing: for writes the response does not wait for. */
  untimed(): TaskStore {
    return this.timing ? new TaskStore(this.db, { ...this.options, timing: undefined }) : this;
  }

  /** Insert a QUEUED task. @throws when the id exists already (ids are random UUIDs). */
  async create(task: NewTask, options: CreateTaskOptions = {}): Promise<TaskRow> {
    const row = this.newRow(task, options);
    await this.insert(row);
    return row;
  }

  /**
   * The row {@link create} would insert, without writing it: a route that inserts it while the job is
   * already on its way ({@link insert}, RunGenerationInput.inserted) needs the row (its id, owner, date) first.
   */
  newRow(task: NewTask, options: CreateTaskOptions = {}): TaskRow {
    return toRow(this.newRecord(task, options));
  }

  /** Insert a row made by {@link newRow}. @throws when the id exists already. */
  async insert(row: TaskRow): Promise<void> {
    const record = toRecord(row);
    const columns = Object.keys(record);
    await this.query((db) =>
      db
        .prepare(`INSERT INTO tasks (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`)
        .bind(...Object.values(record))
        .run(),
    );
  }

  private newRecord(task: NewTask, options: CreateTaskOptions): TaskRecord {
    const now = this.now();
    return {
      id: task.id,
      tenant: task.owner.tenant,
      key_hash: task.owner.key_hash,
      key_name: task.key_name,
      style: task.style,
      status: 'QUEUED',
      reason: null,
      error_json: null,
      progress_percent: 0,
      eta_seconds: null,
      request_json: JSON.stringify(task.request ?? null),
      result_json: null,
      webhook_url: task.webhook_url ?? null,
      backend: options.backend ?? null,
      attempts: options.submitting ? 1 : 0,
      created_at: now,
      updated_at: now,
    };
  }

  /** The owner's task, or null when it does not exist or belongs to another key. */
  async get(id: string, owner: TaskOwner): Promise<TaskRow | null> {
    const record = await this.query((db) =>
      db.prepare('SELECT * FROM tasks WHERE id = ? AND tenant = ? AND key_hash = ?').bind(id, owner.tenant, owner.key_hash).first<TaskRecord>(),
    );
    return record ? toRow(record) : null;
  }

  /**
   * A task by id whoever owns it — for the edge's own workers (the runner, the Queue consumer),
   * never for answering a client directly.
   */
  async load(id: string): Promise<TaskRow | null> {
    const record = await this.query((db) => db.prepare('SELECT * FROM tasks WHERE id = ?').bind(id).first<TaskRecord>());
    return record ? toRow(record) : null;
  }

  /** The owner's tasks, newest first; `limit` is clamped to 1..MAX_TASK_LIST_LIMIT. */
  async list(owner: TaskOwner, limit = DEFAULT_TASK_LIST_LIMIT): Promise<TaskRow[]> {
    const clamped = Math.min(MAX_TASK_LIST_LIMIT, Math.max(1, Math.floor(limit)));
    const { results } = await this.query((db) =>
      db
        .prepare('SELECT * FROM tasks WHERE tenant = ? AND key_hash = ? ORDER BY created_at DESC, id DESC LIMIT ?')
        .bind(owner.tenant, owner.key_hash, clamped)
        .all<TaskRecord>(),
    );
    return results.map(toRow);
  }

  /** A submission to a GPU service begins: attempts + 1. @returns false when the task has ended. */
  startAttempt(id: string): Promise<boolean> {
    return this.update(id, 'attempts = attempts + 1', []);
  }

  /** The GPU service at `backend` accepted the job. @returns false when the task has ended. */
  setBackend(id: string, backend: string): Promise<boolean> {
    return this.update(id, 'backend = ?', [backend]);
  }

  /** The GPU service started the job. @returns false when the task has ended. */
  markProcessing(id: string): Promise<boolean> {
    return this.update(id, "status = 'PROCESSING'", []);
  }

  /**
   * Progress of a running job: percent in 0..100 (rounded down), ETA in seconds or null; the task
   * becomes PROCESSING. @returns false when the task has ended.
   */
  updateProgress(id: string, progressPercent: number, etaSeconds: number | null): Promise<boolean> {
    const percent = Math.min(100, Math.max(0, Math.floor(progressPercent)));
    return this.update(id, "status = 'PROCESSING', progress_percent = ?, eta_seconds = ?", [percent, etaSeconds]);
  }

  /**
   * Several running-state changes in one guarded UPDATE (RunningRowWriter): backend, PROCESSING, progress.
   * @returns false when the task has ended (nothing changed), true also when `change` is empty.
   */
  async updateRunning(id: string, change: RunningChange): Promise<boolean> {
    const assignments: string[] = [];
    const values: unknown[] = [];
    if (change.backend !== undefined) {
      assignments.push('backend = ?');
      values.push(change.backend);
    }
    if (change.processing || change.progress) assignments.push("status = 'PROCESSING'");
    if (change.progress) {
      assignments.push('progress_percent = ?', 'eta_seconds = ?');
      values.push(Math.min(100, Math.max(0, Math.floor(change.progress.percent))), change.progress.etaSeconds);
    }
    if (assignments.length === 0) return true;
    return this.update(id, assignments.join(', '), values);
  }

  /**
   * The job finished and its images are stored; `backend` (when given) is recorded with it, so the ending
   * row names the GPU service even if the running-state write that said so had not landed.
   * @returns false when the task had already ended (e.g. cancelled).
   */
  succeed(id: string, result: TaskResult, backend?: string): Promise<boolean> {
    return this.update(
      id,
      "status = 'SUCCEED', progress_percent = 100, eta_seconds = 0, reason = NULL, error_json = NULL, result_json = ?, backend = COALESCE(?, backend)",
      [JSON.stringify(result), backend ?? null],
    );
  }

  /** The task failed for good; `error.message` is the reason. @returns false when it had already ended. */
  fail(id: string, error: TaskError): Promise<boolean> {
    return this.update(id, "status = 'FAILED', eta_seconds = NULL, reason = ?, error_json = ?", [error.message, JSON.stringify(error)]);
  }

  /** The client cancelled the task. @returns false when it had already ended. */
  cancel(id: string, error: TaskError): Promise<boolean> {
    return this.update(id, "status = 'CANCELLED', eta_seconds = NULL, reason = ?, error_json = ?", [error.message, JSON.stringify(error)]);
  }

  /**
   * Put an open task back to QUEUED for another attempt (transient failure), keeping `reason` as
   * the last failure. @returns false when it had already ended.
   */
  requeue(id: string, reason: string): Promise<boolean> {
    return this.update(id, "status = 'QUEUED', progress_percent = 0, eta_seconds = NULL, reason = ?", [reason]);
  }

  /**
   * The heartbeat of a task's lease (task-lease.ts): refresh updated_at of an open task.
   * @returns false when the task has ended.
   */
  touch(id: string): Promise<boolean> {
    return this.update(id, 'status = status', []);
  }

  /**
   * Take over a stale task's lease (task-lease.ts): refresh updated_at only if it is still
   * `updatedAt` as the caller read it, so of several readers seeing the same stale row exactly one
   * reconciles it, and a runner that came back to life (its heartbeat moved updated_at) is not
   * overtaken. @returns whether this caller now holds the lease.
   */
  async takeOver(id: string, updatedAt: number): Promise<boolean> {
    const result = await this.query((db) =>
      db.prepare(`UPDATE tasks SET updated_at = ? WHERE id = ? AND updated_at = ? AND ${OPEN}`).bind(this.now(), id, updatedAt).run(),
    );
    return result.meta.changes > 0;
  }

  /** One guarded transition: `SET <assignments>, updated_at = now WHERE id = ? AND <open>`. */
  private async update(id: string, assignments: string, values: unknown[]): Promise<boolean> {
    const result = await this.query((db) =>
      db
        .prepare(`UPDATE tasks SET ${assignments}, updated_at = ? WHERE id = ? AND ${OPEN}`)
        .bind(...values, this.now(), id)
        .run(),
    );
    return result.meta.changes > 0;
  }

  /** Run a query; on "no such table" create the schema and run it once more. */
  private query<T>(run: (db: D1Database) => Promise<T>): Promise<T> {
    return this.timing ? this.timing.measure('db', () => this.queryOnce(run)) : this.queryOnce(run);
  }

  private async queryOnce<T>(run: (db: D1Database) => Promise<T>): Promise<T> {
    try {
      return await run(this.db);
    } catch (error) {
      if (!/no such table: tasks/i.test(String((error as Error)?.message ?? error))) throw error;
      await this.db.batch(TASKS_SCHEMA_STATEMENTS.map((sql) => this.db.prepare(sql)));
      return run(this.db);
    }
  }
}

/** Parse JSON written by this store; a corrupt column reads as null (logged) rather than failing the request. */
function parseJson(text: string | null, column: string, id: string): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    console.error(`task ${id}: ${column} is not JSON`);
    return null;
  }
}

/** The D1 record of a row made by newRow (its columns, JSON as text). */
function toRecord(row: TaskRow): TaskRecord {
  return {
    id: row.id,
    tenant: row.tenant,
    key_hash: row.key_hash,
    key_name: row.key_name,
    style: row.style,
    status: row.status,
    reason: row.reason,
    error_json: row.error === null ? null : JSON.stringify(row.error),
    progress_percent: row.progress_percent,
    eta_seconds: row.eta_seconds,
    request_json: JSON.stringify(row.request ?? null),
    result_json: row.result === null ? null : JSON.stringify(row.result),
    webhook_url: row.webhook_url,
    backend: row.backend,
    attempts: row.attempts,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

function toRow(record: TaskRecord): TaskRow {
  const status = (TASK_STATUSES as readonly string[]).includes(record.status) ? (record.status as TaskStatus) : 'FAILED';
  const error = TaskErrorSchema.safeParse(parseJson(record.error_json, 'error_json', record.id));
  const result = TaskResultSchema.safeParse(parseJson(record.result_json, 'result_json', record.id));
  return {
    id: record.id,
    tenant: record.tenant,
    key_hash: record.key_hash,
    key_name: record.key_name,
    style: record.style,
    status,
    reason: record.reason,
    error: error.success ? error.data : null,
    progress_percent: record.progress_percent,
    eta_seconds: record.eta_seconds,
    request: parseJson(record.request_json, 'request_json', record.id),
    result: result.success ? result.data : null,
    webhook_url: record.webhook_url,
    backend: record.backend,
    attempts: record.attempts,
    created_at: record.created_at,
    updated_at: record.updated_at,
  };
}
