/**
 * API key administration for the edge Worker (README, "Keys, limits, links, inputs"):
 *
 *   npm run keys -- create --name NAME [--key KEY] [--tenant T] [--rpm N] [--concurrency N] [--images-per-day N] [--compute-units-per-minute N] [--models-download] [--replace]
 *   npm run keys -- list        (name, tenant, active|revoked, hash prefix[, privileged scopes such as models:download])
 *   npm run keys -- revoke NAME
 *
 * Keys are stored only as SHA-256 hashes: KV `API_KEYS` maps hash → record (shared/src/api/api-key.ts),
 * with {name, tenant, revoked} as list metadata. By default this writes the local dev KV that
 * `wrangler dev --persist-to .wrangler/state` serves (through `wrangler kv key … --local`, which
 * works while the dev server runs, so a new key works at once); `--remote` writes the deployed
 * namespace instead. `create` prints the new key alone on its last line.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Command, InvalidArgumentError } from 'commander';
import {
  ApiKeyListMetadataSchema,
  ApiKeyRecordSchema,
  apiKeyHash,
  MODELS_DOWNLOAD_SCOPE,
  newApiKeyRecord,
  PRIVILEGED_SCOPES,
  type ApiKeyLimits,
  type ApiKeyListMetadata,
  type ApiKeyRecord,
} from '@image-api/shared/api/api-key';

const run = promisify(execFile);
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Local persistence directory shared with `wrangler dev --persist-to` (relative to the repo root). */
export const DEFAULT_PERSIST_TO = '.wrangler/state';
/** The KV binding of wrangler.toml that holds key records. */
export const API_KEYS_BINDING = 'API_KEYS';

/** A mistake the user can fix; the message ends with how. Exit code 2. */
export class UserError extends Error {
  override name = 'UserError';
}

/** Where keys are stored. */
export interface KeyStoreOptions {
  /** Write the deployed namespace instead of local dev storage. */
  remote?: boolean;
  /** Local persistence directory (default .wrangler/state); ignored with remote. */
  persistTo?: string;
  /** Wrangler config (default <repo>/wrangler.toml). */
  config?: string;
}

/** One listed key: its hash and list metadata. */
export interface ListedKey {
  hash: string;
  metadata: ApiKeyListMetadata | null;
}

/** The KV operations the commands need; {@link WranglerKeyStore} implements them with the wrangler CLI. */
export interface KeyStore {
  put(hash: string, record: ApiKeyRecord): Promise<void>;
  get(hash: string): Promise<ApiKeyRecord | null>;
  list(): Promise<ListedKey[]>;
}

/**
 * The list metadata stored beside a record: name, tenant, `revoked` when it is, and its privileged scopes
 * (`models:download`) when it holds any, so `keys list` shows them without reading every record.
 */
export function listMetadataOf(record: ApiKeyRecord): ApiKeyListMetadata {
  const privileged = record.scopes.filter((scope) => PRIVILEGED_SCOPES.includes(scope));
  return {
    name: record.name,
    tenant: record.tenant,
    ...(record.revoked ? { revoked: true } : {}),
    ...(privileged.length ? { privileged } : {}),
  };
}

/** KV access through `wrangler kv key put|get|list` (local by default, `--remote` on request). */
export class WranglerKeyStore implements KeyStore {
  private readonly wranglerBin: string;

  constructor(private readonly options: KeyStoreOptions = {}) {
    const require = createRequire(import.meta.url);
    this.wranglerBin = path.join(path.dirname(require.resolve('wrangler/package.json')), 'bin', 'wrangler.js');
  }

  private async wrangler(args: string[]): Promise<string> {
    const where = this.options.remote
      ? ['--remote']
      : ['--local', '--persist-to', path.resolve(REPO_ROOT, this.options.persistTo ?? DEFAULT_PERSIST_TO)];
    const full = [
      this.wranglerBin,
      ...args,
      '--binding',
      API_KEYS_BINDING,
      ...where,
      '--config',
      this.options.config ?? path.join(REPO_ROOT, 'wrangler.toml'),
    ];
    try {
      const { stdout } = await run(process.execPath, full, {
        cwd: REPO_ROOT,
        maxBuffer: 16 * 1024 * 1024,
        env: { ...process.env, WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1' },
      });
      return stdout;
    } catch (error) {
      const stderr = (error as { stderr?: string }).stderr ?? '';
      throw new Error(`wrangler ${args.slice(0, 3).join(' ')} failed: ${stderr.trim() || String(error)}`);
    }
  }

  async put(hash: string, record: ApiKeyRecord): Promise<void> {
    await this.wrangler(['kv', 'key', 'put', hash, JSON.stringify(record), '--metadata', JSON.stringify(listMetadataOf(record))]);
  }

  async get(hash: string): Promise<ApiKeyRecord | null> {
    let text: string;
    try {
      text = await this.wrangler(['kv', 'key', 'get', hash, '--text']);
    } catch {
      return null;
    }
    const parsed = ApiKeyRecordSchema.safeParse(safeJson(text.trim()));
    return parsed.success ? parsed.data : null;
  }

  async list(): Promise<ListedKey[]> {
    const text = await this.wrangler(['kv', 'key', 'list']);
    const start = text.indexOf('[');
    const entries = safeJson(start >= 0 ? text.slice(start) : '[]');
    if (!Array.isArray(entries)) throw new Error(`unexpected output of wrangler kv key list: ${text.slice(0, 200)}`);
    return entries.map((entry: { name: string; metadata?: unknown }) => {
      const metadata = ApiKeyListMetadataSchema.safeParse(entry.metadata);
      return { hash: entry.name, metadata: metadata.success ? metadata.data : null };
    });
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** A new random key: "sk-img-" + 32 random bytes in base64url (256 bits). */
export function generateApiKey(): string {
  return `sk-img-${randomBytes(32).toString('base64url')}`;
}

/** Options of {@link createKey}. */
export interface CreateKeyOptions extends KeyStoreOptions {
  name: string;
  /** Use this key instead of a random one (e.g. DEV_API_KEY); at least 16 characters. */
  key?: string;
  /** Default: the name. Letters, digits, ".", "_" and "-" only (it is an R2 key prefix). */
  tenant?: string;
  limits?: ApiKeyLimits;
  /** Scopes (default ["*"]); add `models:download` for a key whose jobs may download any hf.co repository. */
  scopes?: string[];
  /**
   * Another active key with this name: true (default for callers such as `npm start`) revokes it,
   * false refuses with a UserError (what `keys create` does without --replace).
   */
  replace?: boolean;
  /** Store to use (default: wrangler, local or remote per the options). */
  store?: KeyStore;
}

/**
 * Create (or, for the same key, re-install) an API key and return it. Names are unique among
 * active keys: an active key with the same name but another value is revoked (`replace`, the
 * default) or refused (`replace: false`). Calling it again with the same name and key is harmless,
 * so `npm start` can install DEV_API_KEY, or a fresh random dev key, on every start.
 * @throws UserError for a short key, a bad name/tenant/limit, or a name in use.
 */
export async function createKey(options: CreateKeyOptions): Promise<string> {
  const store = options.store ?? new WranglerKeyStore(options);
  const key = options.key ?? generateApiKey();
  if (key.length < 16 || /\s/.test(key)) throw new UserError('A key must be at least 16 characters without spaces. Omit --key to generate one.');
  const parsed = ApiKeyRecordSchema.safeParse({
    name: options.name,
    tenant: options.tenant ?? options.name,
    key_hash: await apiKeyHash(key),
    limits: options.limits ?? {},
    created_at: new Date().toISOString(),
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UserError(`Invalid ${issue.path.join('.')}: ${issue.message}. Use letters, digits, ".", "_" or "-" for --name/--tenant.`);
  }
  const record = await newApiKeyRecord(key, { name: parsed.data.name, tenant: parsed.data.tenant, limits: parsed.data.limits, scopes: options.scopes });
  const sameName = (await store.list()).filter(
    (entry) => entry.metadata?.name === record.name && !entry.metadata.revoked && entry.hash !== record.key_hash,
  );
  if (sameName.length > 0 && options.replace === false) {
    throw new UserError(`An active key named "${record.name}" already exists. Revoke it first (keys revoke ${record.name}) or pass --replace.`);
  }
  await store.put(record.key_hash, record);
  for (const entry of sameName) await revokeHash(store, entry.hash);
  return key;
}

async function revokeHash(store: KeyStore, hash: string): Promise<boolean> {
  const record = await store.get(hash);
  if (!record || record.revoked) return false;
  await store.put(hash, { ...record, revoked: true, revoked_at: new Date().toISOString() });
  return true;
}

/**
 * Revoke every active key named `name` (records are kept, marked revoked, for auditing).
 * Returns how many were revoked. @throws UserError when there is none.
 */
export async function revokeKey(name: string, options: KeyStoreOptions & { store?: KeyStore } = {}): Promise<number> {
  const store = options.store ?? new WranglerKeyStore(options);
  const targets = (await store.list()).filter((entry) => entry.metadata?.name === name && !entry.metadata.revoked);
  let revoked = 0;
  for (const entry of targets) if (await revokeHash(store, entry.hash)) revoked += 1;
  if (revoked === 0) throw new UserError(`No active key named "${name}". See the names with: npm run keys -- list`);
  return revoked;
}

/** Every stored key's name, tenant, status and hash prefix (never the key: it is not stored). */
export async function listKeys(options: KeyStoreOptions & { store?: KeyStore } = {}): Promise<ListedKey[]> {
  const store = options.store ?? new WranglerKeyStore(options);
  return store.list();
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer.');
  return n;
}

/** The `keys` command line. Exported so tests can run it with an in-memory store. */
export function buildProgram(io: { log: (line: string) => void; store?: KeyStore } = { log: console.log }): Command {
  const program = new Command('keys').description('Manage API keys of the edge Worker (stored as SHA-256 hashes in KV API_KEYS).');
  // Throw instead of exiting (subcommands inherit this), so main() decides the exit code.
  program.exitOverride();
  const storeOptions = (cmd: Command): KeyStoreOptions & { store?: KeyStore } => {
    const opts = cmd.optsWithGlobals<{ remote?: boolean; persistTo?: string }>();
    return { remote: opts.remote, persistTo: opts.persistTo, store: io.store };
  };
  program
    .option('--remote', 'use the deployed KV namespace instead of local dev storage')
    .option('--persist-to <dir>', 'local persistence directory shared with wrangler dev', DEFAULT_PERSIST_TO);

  program
    .command('create')
    .description('create a key and print it (alone on the last line)')
    .requiredOption('--name <name>', 'unique name of the key')
    .option('--key <key>', 'use this key instead of a random one')
    .option('--tenant <tenant>', 'tenant (R2 prefix, isolation); default: the name')
    .option('--rpm <n>', 'requests per minute', positiveInt)
    .option('--concurrency <n>', 'concurrent jobs', positiveInt)
    .option('--images-per-day <n>', 'images per UTC day', positiveInt)
    .option('--compute-units-per-minute <n>', 'compute units (steps × megapixels × images) per minute', positiveInt)
    .option('--models-download', `grant the ${MODELS_DOWNLOAD_SCOPE} scope: this key's jobs may download any hf.co repository (admins only)`)
    .option('--replace', 'revoke other active keys with this name')
    .action(async (opts: { name: string; key?: string; tenant?: string; rpm?: number; concurrency?: number; imagesPerDay?: number; computeUnitsPerMinute?: number; modelsDownload?: boolean; replace?: boolean }, cmd: Command) => {
      const limits: ApiKeyLimits = {};
      if (opts.rpm !== undefined) limits.rpm = opts.rpm;
      if (opts.concurrency !== undefined) limits.concurrency = opts.concurrency;
      if (opts.imagesPerDay !== undefined) limits.images_per_day = opts.imagesPerDay;
      if (opts.computeUnitsPerMinute !== undefined) limits.compute_units_per_minute = opts.computeUnitsPerMinute;
      const key = await createKey({
        ...storeOptions(cmd),
        name: opts.name,
        key: opts.key,
        tenant: opts.tenant,
        limits,
        scopes: opts.modelsDownload ? ['*', MODELS_DOWNLOAD_SCOPE] : undefined,
        replace: opts.replace === true,
      });
      io.log(`Created key "${opts.name}" (tenant ${opts.tenant ?? opts.name}). It is shown only once:`);
      io.log(key);
    });

  program
    .command('list')
    .description('list keys: name, tenant, status, hash prefix, and privileged scopes (models:download) where held')
    .action(async (_opts: unknown, cmd: Command) => {
      const keys = await listKeys(storeOptions(cmd));
      if (keys.length === 0) io.log('No keys. Create one with: npm run keys -- create --name NAME');
      for (const entry of keys) {
        const status = entry.metadata?.revoked ? 'revoked' : 'active';
        const privileged = entry.metadata?.privileged?.length ? `\t${entry.metadata.privileged.join(',')}` : '';
        io.log(`${entry.metadata?.name ?? '?'}\t${entry.metadata?.tenant ?? '?'}\t${status}\t${entry.hash.slice(0, 12)}…${privileged}`);
      }
    });

  program
    .command('revoke')
    .description('revoke the active key(s) with this name')
    .argument('<name>')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const count = await revokeKey(name, storeOptions(cmd));
      io.log(`Revoked ${count} key${count === 1 ? '' : 's'} named "${name}".`);
    });
  return program;
}

/** Entry point: exit 0 ok, 2 usage/user error, 1 anything else. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.help' || code === 'commander.version') return 0;
    if (typeof code === 'string' && code.startsWith('commander.')) return 2;
    if (error instanceof UserError) {
      console.error(`error: ${error.message}`);
      return 2;
    }
    console.error(`error: ${(error as Error).message}`);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
