import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { TASKS_SCHEMA_STATEMENTS } from '../../../edge/src/tasks/task-schema';
import { TaskStore } from '../../../edge/src/tasks/task-store';
import type { TaskResult } from '../../../edge/src/tasks/task-types';
import migrationSql from '../../../edge/migrations/0001_tasks.sql?raw';

const OWNER = { tenant: 'tenant-a', key_hash: 'a'.repeat(64) };
const OTHER_KEY = { tenant: 'tenant-a', key_hash: 'b'.repeat(64) };
const OTHER_TENANT = { tenant: 'tenant-b', key_hash: 'a'.repeat(64) };

function newTask(store: TaskStore, id = crypto.randomUUID(), owner = OWNER) {
  return store.create({ id, owner, key_name: 'k', style: 'openai.generations', request: { prompt: 'a red apple' }, webhook_url: null });
}

const RESULT: TaskResult = {
  images: [{ index: 0, seed: 7, key: 'tenant-a/2026/01/01/t/0.png', mime_type: 'image/png' }],
  receipt: {
    model: 'tiny-analytic',
    model_hash: 'sha256:x',
    mode: 'txt2img',
    prompt: 'a red apple',
    negative_prompt: '',
    width: 64,
    height: 64,
    batch_size: 1,
    seed: 7,
    seeds: [7],
    steps: 4,
    sampler: 'euler',
    scheduler: 'normal',
    cfg_scale: 7,
    rng: 'cpu',
    engine_version: 'e',
    onnxruntime_version: 'o',
  },
  usage: {
    input_tokens: 3,
    input_tokens_details: { image_tokens: 0, text_tokens: 3 },
    output_tokens: 64,
    output_tokens_details: { image_tokens: 64 },
    total_tokens: 67,
    images: 1,
    steps: 4,
    width: 64,
    height: 64,
    compute_units: 0.016,
  },
  finished_at: 1_000,
};

/** Statements of a SQL file: comments dropped, whitespace collapsed. */
function statements(sql: string): string[] {
  return sql
    .split('\n')
    .filter((line) => !line.trim().startsWith('--'))
    .join('\n')
    .split(';')
    .map((part) => part.replace(/\s+/g, ' ').trim())
    .filter(Boolean);
}

describe('TaskStore (D1)', () => {
  it('the migration file and the statements the store runs itself are the same schema', () => {
    expect(statements(migrationSql)).toEqual(TASKS_SCHEMA_STATEMENTS.map((sql) => sql.replace(/\s+/g, ' ').trim()));
  });

  it('creates the table itself when the migrations were not applied', async () => {
    await env.DB.prepare('DROP TABLE IF EXISTS tasks').run();
    const store = new TaskStore(env.DB);
    const created = await newTask(store);
    expect(created.status).toBe('QUEUED');
    expect(await store.get(created.id, OWNER)).toMatchObject({ id: created.id, request: { prompt: 'a red apple' } });
  });

  it('reads are scoped by tenant and key: another key or tenant gets nothing', async () => {
    const store = new TaskStore(env.DB);
    const task = await newTask(store);
    expect(await store.get(task.id, OWNER)).not.toBeNull();
    expect(await store.get(task.id, OTHER_KEY)).toBeNull();
    expect(await store.get(task.id, OTHER_TENANT)).toBeNull();
    expect((await store.list(OTHER_KEY)).map((row) => row.id)).not.toContain(task.id);
    expect((await store.load(task.id))?.id).toBe(task.id);
  });

  it('moves through attempt, backend, progress and success; an ended task never changes again', async () => {
    let clock = 1_000;
    const store = new TaskStore(env.DB, { now: () => clock });
    const task = await newTask(store);
    clock = 2_000;
    expect(await store.startAttempt(task.id)).toBe(true);
    expect(await store.setBackend(task.id, 'http://gpu-1')).toBe(true);
    expect(await store.updateProgress(task.id, 41.9, 3.5)).toBe(true);
    expect(await store.get(task.id, OWNER)).toMatchObject({
      status: 'PROCESSING',
      attempts: 1,
      backend: 'http://gpu-1',
      progress_percent: 41,
      eta_seconds: 3.5,
      created_at: 1_000,
      updated_at: 2_000,
    });
    expect(await store.succeed(task.id, RESULT)).toBe(true);
    const done = await store.get(task.id, OWNER);
    expect(done).toMatchObject({ status: 'SUCCEED', progress_percent: 100, result: RESULT, error: null });

    const error = { code: 'x', message: 'late failure', param: null, type: 'server_error' as const };
    expect(await store.fail(task.id, error)).toBe(false);
    expect(await store.cancel(task.id, error)).toBe(false);
    expect(await store.updateProgress(task.id, 5, null)).toBe(false);
    expect(await store.requeue(task.id, 'again')).toBe(false);
    expect((await store.get(task.id, OWNER))?.status).toBe('SUCCEED');
  });

  it('fail keeps the reason and the error; requeue puts an open task back to QUEUED with the reason', async () => {
    const store = new TaskStore(env.DB);
    const failing = await newTask(store);
    await store.updateProgress(failing.id, 50, 1);
    expect(await store.requeue(failing.id, 'backend unreachable')).toBe(true);
    expect(await store.get(failing.id, OWNER)).toMatchObject({ status: 'QUEUED', progress_percent: 0, reason: 'backend unreachable' });
    const error = { code: 'internal_error', message: 'The UNet failed.', param: null, type: 'server_error' as const };
    expect(await store.fail(failing.id, error)).toBe(true);
    expect(await store.get(failing.id, OWNER)).toMatchObject({ status: 'FAILED', reason: 'The UNet failed.', error });
  });

  it('lists the owner\'s tasks newest first, limited', async () => {
    let clock = 10_000;
    const store = new TaskStore(env.DB, { now: () => clock });
    const owner = { tenant: 'tenant-list', key_hash: 'c'.repeat(64) };
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      clock += 1_000;
      ids.push((await newTask(store, crypto.randomUUID(), owner)).id);
    }
    expect((await store.list(owner)).map((row) => row.id)).toEqual([...ids].reverse());
    expect((await store.list(owner, 2)).map((row) => row.id)).toEqual([ids[2], ids[1]]);
  });
});
