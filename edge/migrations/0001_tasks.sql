-- Task rows: one per generation of any API style (OpenAI sync/stream, /v1/img2img, /v3/async/*).
-- Written by edge/src/tasks/task-store.ts. `IF NOT EXISTS` because the store also creates the
-- table itself on first use when migrations were not applied (local dev, tests); keep this file and
-- edge/src/tasks/task-schema.ts identical (test/edge/tasks/task-schema.test.ts checks it).
CREATE TABLE IF NOT EXISTS tasks (
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
);
CREATE INDEX IF NOT EXISTS tasks_by_owner ON tasks (key_hash, created_at);
CREATE INDEX IF NOT EXISTS tasks_by_status ON tasks (status, updated_at);
