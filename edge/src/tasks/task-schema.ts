/**
 * The D1 schema of the `tasks` table, as statements the store can run itself. The same statements
 * are the deployable migration edge/migrations/0001_tasks.sql (`wrangler d1 migrations apply DB`);
 * both use IF NOT EXISTS so applying one after the other is harmless. Times are unix milliseconds.
 *
 * Columns: id (task id = GenerationJob id), tenant and key_hash (the owner; every read is scoped by
 * both), key_name (R2 metadata), style (which public API created it), status (TaskStatus), reason
 * (human sentence when FAILED/CANCELLED or when re-queued), error_json (the error object), progress_percent
 * (0..100), eta_seconds, request_json (style-specific request as stored by its route), result_json
 * (TaskResult), webhook_url, backend (base URL of the GPU service running it), attempts (submissions
 * so far), created_at, updated_at.
 */
export const TASKS_SCHEMA_STATEMENTS: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS tasks (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  key_hash TEXT NOT NULL,
  key_name TEXT NOT NULL DEFAULT '',
  style TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('QUEUED', 'PROCESSING', 'SUCCEED', 'FAILED', 'CANCELLED')),
  reason TEXT,
  error_json TEXT,
  progress_percent INTEGER NOT NULL DEFAULT 0,
  eta_seconds REAL,
  request_json TEXT NOT NULL,
  result_json TEXT,
  webhook_url TEXT,
  backend TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
)`,
  'CREATE INDEX IF NOT EXISTS tasks_by_owner ON tasks (key_hash, created_at)',
  'CREATE INDEX IF NOT EXISTS tasks_by_status ON tasks (status, updated_at)',
];
