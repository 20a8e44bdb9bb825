import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { apiKeyHash, ApiKeyRecordSchema, hasScope, type ApiKeyRecord } from '@image-api/shared/api/api-key';
import {
  buildProgram,
  createKey,
  listKeys,
  listMetadataOf,
  revokeKey,
  UserError,
  WranglerKeyStore,
  type KeyStore,
  type ListedKey,
} from '../../scripts/keys';
import { installDevKey } from '../../scripts/start/dev-key';

/** KV stand-in with the semantics the commands rely on (put overwrites, list returns metadata). */
class MemoryKeyStore implements KeyStore {
  readonly records = new Map<string, ApiKeyRecord>();
  async put(hash: string, record: ApiKeyRecord): Promise<void> {
    this.records.set(hash, ApiKeyRecordSchema.parse(record));
  }
  async get(hash: string): Promise<ApiKeyRecord | null> {
    return this.records.get(hash) ?? null;
  }
  async list(): Promise<ListedKey[]> {
    return [...this.records].map(([hash, r]) => ({ hash, metadata: listMetadataOf(r) }));
  }
}

async function runCli(store: KeyStore, args: string[]): Promise<string[]> {
  const lines: string[] = [];
  await buildProgram({ log: (line) => lines.push(line), store }).parseAsync(args, { from: 'user' });
  return lines;
}

describe('keys create / list / revoke (in-memory store)', () => {
  it('create prints the new key alone on its last line and stores only its hash with the limits', async () => {
    const store = new MemoryKeyStore();
    const lines = await runCli(store, ['create', '--name', 'alice', '--rpm', '30', '--concurrency', '2', '--images-per-day', '100']);
    const key = lines.at(-1)!;
    expect(key).toMatch(/^sk-img-[A-Za-z0-9_-]{43}$/);
    const hash = await apiKeyHash(key);
    const record = store.records.get(hash)!;
    expect(record).toMatchObject({ name: 'alice', tenant: 'alice', key_hash: hash, limits: { rpm: 30, concurrency: 2, images_per_day: 100 } });
    expect(JSON.stringify([...store.records])).not.toContain(key);
  });

  it('--models-download grants the models:download scope, which a plain key ("*") does not hold', async () => {
    const store = new MemoryKeyStore();
    const admin = (await runCli(store, ['create', '--name', 'ops', '--models-download'])).at(-1)!;
    const plain = (await runCli(store, ['create', '--name', 'bob'])).at(-1)!;
    const adminRecord = store.records.get(await apiKeyHash(admin))!;
    const plainRecord = store.records.get(await apiKeyHash(plain))!;
    expect(adminRecord.scopes).toEqual(['*', 'models:download']);
    expect(hasScope(adminRecord, 'models:download')).toBe(true);
    expect(plainRecord.scopes).toEqual(['*']);
    expect(hasScope(plainRecord, 'models:download')).toBe(false);
    // keys list says which keys hold it (a fifth column only for those).
    const lines = await runCli(store, ['list']);
    expect(lines.find((line) => line.startsWith('ops\t'))).toMatch(/^ops\tops\tactive\t[0-9a-f]{12}…\tmodels:download$/);
    expect(lines.find((line) => line.startsWith('bob\t'))).toMatch(/^bob\tbob\tactive\t[0-9a-f]{12}…$/);
  });

  it('two generated keys differ', async () => {
    const store = new MemoryKeyStore();
    const a = await createKey({ name: 'a', store });
    const b = await createKey({ name: 'b', store });
    expect(a).not.toBe(b);
  });

  it('--key installs a given key; installing the same key again is harmless', async () => {
    const store = new MemoryKeyStore();
    const key = 'sk-dev-0123456789abcdef';
    expect(await createKey({ name: 'dev', key, store })).toBe(key);
    expect(await createKey({ name: 'dev', key, store })).toBe(key);
    expect(store.records.size).toBe(1);
  });

  it('keys create refuses a second active key with the same name without --replace', async () => {
    const store = new MemoryKeyStore();
    await runCli(store, ['create', '--name', 'dup']);
    await expect(runCli(store, ['create', '--name', 'dup'])).rejects.toThrow(UserError);
    await expect(createKey({ name: 'dup', store, replace: false })).rejects.toThrow(/already exists/);
    await runCli(store, ['create', '--name', 'dup', '--replace']);
    expect([...store.records.values()].filter((r) => !r.revoked)).toHaveLength(1);
  });

  it('npm start installs dev keys without revoking another stack\'s: a new key is added, DEV_API_KEY re-installs', async () => {
    const store = new MemoryKeyStore();
    const running = 'sk-dev-the-key-a-running-stack-printed';
    const nameA = await installDevKey(running, { store });
    const nameB = await installDevKey('sk-dev-a-second-npm-start-made-this', { store });
    expect(nameA).not.toBe(nameB);
    await installDevKey(running, { store }); // a restart with DEV_API_KEY=<the same key>
    const active = [...store.records.values()].filter((r) => !r.revoked);
    expect(active.map((r) => r.name).sort()).toEqual([nameA, nameB].sort());
    expect(active.every((r) => r.tenant === 'dev')).toBe(true);
    expect(store.records.size).toBe(2);
  });

  it('createKey replaces the previous key of that name by default', async () => {
    const store = new MemoryKeyStore();
    const first = await createKey({ name: 'dev', store });
    const second = await createKey({ name: 'dev', store });
    expect(store.records.get(await apiKeyHash(first))?.revoked).toBe(true);
    expect(store.records.get(await apiKeyHash(second))?.revoked).toBeUndefined();
  });

  it('revoke marks the record revoked (kept for audit); revoking again is a UserError', async () => {
    const store = new MemoryKeyStore();
    const key = await createKey({ name: 'bob', store });
    expect(await revokeKey('bob', { store })).toBe(1);
    const record = store.records.get(await apiKeyHash(key))!;
    expect(record.revoked).toBe(true);
    expect(record.revoked_at).toBeDefined();
    await expect(revokeKey('bob', { store })).rejects.toThrow(/No active key named "bob"/);
  });

  it('list shows name, tenant, status and a hash prefix, never the key', async () => {
    const store = new MemoryKeyStore();
    const key = await createKey({ name: 'carol', tenant: 'acme', store });
    const lines = await runCli(store, ['list']);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^carol\tacme\tactive\t[0-9a-f]{12}…$/);
    expect(lines[0]).not.toContain(key);
  });

  it('rejects a tenant that is not R2-key-safe, a short key and a bad --rpm', async () => {
    const store = new MemoryKeyStore();
    await expect(createKey({ name: 'x', tenant: 'a/b', store })).rejects.toThrow(UserError);
    await expect(createKey({ name: 'x', key: 'short', store })).rejects.toThrow(UserError);
    await expect(runCli(store, ['create', '--name', 'x', '--rpm', '-3'])).rejects.toMatchObject({ code: 'commander.invalidArgument' });
    expect(store.records.size).toBe(0);
  });
});

describe('keys against local wrangler KV storage', () => {
  const persistTo = mkdtempSync(path.join(os.tmpdir(), 'keys-test-'));
  afterAll(() => rmSync(persistTo, { recursive: true, force: true }));

  it('create, list and revoke through `wrangler kv key … --local --persist-to`', async () => {
    const key = await createKey({ name: 'wrangler-test', persistTo, limits: { rpm: 5 } });
    const hash = await apiKeyHash(key);
    const listed = await listKeys({ persistTo });
    expect(listed).toEqual([{ hash, metadata: { name: 'wrangler-test', tenant: 'wrangler-test' } }]);
    expect(await revokeKey('wrangler-test', { persistTo })).toBe(1);
    const record = await new WranglerKeyStore({ persistTo }).get(hash);
    expect(record).toMatchObject({ name: 'wrangler-test', key_hash: hash, limits: { rpm: 5 }, revoked: true });
    // A models:download key's scope reaches the stored record and the list metadata.
    const admin = await createKey({ name: 'wrangler-admin', persistTo, scopes: ['*', 'models:download'] });
    const adminHash = await apiKeyHash(admin);
    expect((await new WranglerKeyStore({ persistTo }).get(adminHash))?.scopes).toEqual(['*', 'models:download']);
    expect((await listKeys({ persistTo })).find((entry) => entry.hash === adminHash)?.metadata).toEqual({ name: 'wrangler-admin', tenant: 'wrangler-admin', privileged: ['models:download'] });
  }, 60_000);
});
